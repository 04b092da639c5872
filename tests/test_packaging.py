"""What setup.cfg declares must be what installs: the Python range numpy allows, the licence."""
import configparser
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
SETUP = configparser.ConfigParser()
SETUP.read(ROOT / "setup.cfg")

# the oldest CPython each numpy release ships wheels for (numpy's release notes)
NUMPY_MIN_PYTHON = {(2, 0): (3, 9), (2, 1): (3, 10), (2, 2): (3, 10), (2, 3): (3, 11),
                    (2, 4): (3, 11)}


def _version(text):
    return tuple(int(p) for p in text.split("."))


def test_python_requires_admits_only_pythons_the_required_numpy_supports():
    numpy_min = re.search(r"numpy>=(\d+\.\d+)", SETUP["options"]["install_requires"]).group(1)
    python_min = re.fullmatch(r">=(\d+\.\d+)", SETUP["options"]["python_requires"]).group(1)
    assert _version(python_min) >= NUMPY_MIN_PYTHON[_version(numpy_min)]


def test_classifiers_name_only_supported_pythons():
    python_min = _version(SETUP["options"]["python_requires"][2:])
    named = [_version(v) for v in re.findall(r"Python :: (3\.\d+)",
                                             SETUP["metadata"]["classifiers"])]
    assert named and min(named) == python_min


def test_the_declared_licence_ships_its_text():
    assert SETUP["metadata"]["license"] == "Apache-2.0"
    assert SETUP["metadata"]["license_files"].split() == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
