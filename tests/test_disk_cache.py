"""The private cache of generated code (numba modules, CUDA cubins): what it trusts."""
import os
import stat

import pytest

from gpuad import disk_cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    return disk_cache.private_dir("test")


def builder(payload, calls):
    def build():
        calls.append(1)
        return payload
    return build


def test_the_cache_folder_is_private_whatever_the_umask(cache):
    old = os.umask(0)
    try:
        again = disk_cache.private_dir("test")
    finally:
        os.umask(old)
    for folder in (again, again.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_an_entry_is_built_once_then_read(cache):
    calls = []
    key = disk_cache.key_of("source", "nvrtc 13.0", "sm_90")
    assert disk_cache.load_or_build(cache, key, builder(b"cubin", calls)) == b"cubin"
    assert disk_cache.load_or_build(cache, key, builder(b"other", calls)) == b"cubin"
    assert len(calls) == 1
    assert stat.S_IMODE((cache / key).stat().st_mode) == 0o600


def test_keys_differ_with_the_source_or_the_compiler():
    assert len({disk_cache.key_of("a", "v1"), disk_cache.key_of("b", "v1"),
                disk_cache.key_of("a", "v2"), disk_cache.key_of("a\0", "v1")}) == 4


def test_a_damaged_entry_is_rebuilt(cache):
    calls = []
    disk_cache.load_or_build(cache, "k", builder(b"good", calls))
    data = (cache / "k").read_bytes()
    (cache / "k").write_bytes(data[:-1] + b"X")  # one byte flipped: the digest disagrees
    assert disk_cache.load_or_build(cache, "k", builder(b"good", calls)) == b"good"
    (cache / "k").write_bytes(b"no digest at all")
    assert disk_cache.load_or_build(cache, "k", builder(b"good", calls)) == b"good"
    assert len(calls) == 3


def test_an_entry_others_can_write_is_not_trusted(cache):
    calls = []
    disk_cache.load_or_build(cache, "k", builder(b"mine", calls))
    (cache / "k").chmod(0o666)  # anyone could have put code there
    assert not disk_cache.trusted(cache / "k")
    assert disk_cache.load_or_build(cache, "k", builder(b"mine", calls)) == b"mine"
    assert len(calls) == 2 and disk_cache.trusted(cache / "k")


def test_a_link_is_not_trusted(cache, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"x")
    (cache / "k").symlink_to(target)
    assert not disk_cache.trusted(cache / "k")
