"""Sphinx configuration of gpuad's documentation site.

Build it with one command (README, "Documentation"):
``.venv/bin/pip install ".[docs,examples]" && .venv/bin/python -m sphinx -W -b html docs docs/_build/html``.
The API reference is generated at build time from the docstrings of every public name
(``docs/reference/``); the gallery (``docs/gallery/``) runs each example and keeps its plots.
"""
import inspect
import os
import pathlib
import sys

os.environ.setdefault("GPUAD_BACKEND", "numpy")  # the site is built, and its examples run, on the CPU
DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

import gpuad  # noqa: E402  (after the path: the source tree's gpuad, not an installed one)

project = "gpuad"
author = "the gpuad authors"
copyright = "2026, the gpuad authors"
release = version = gpuad.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon",
              "sphinx.ext.viewcode", "sphinx_gallery.gen_gallery"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_heading_anchors = 3
exclude_patterns = ["_build", "examples", "gallery"]
html_theme = "furo"
html_title = f"gpuad {version}"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
nitpicky = False

sphinx_gallery_conf = {
    "examples_dirs": "gallery",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",       # every plot_*.py runs at build time
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
}

# ---------------------------------------------------------------- the API reference

# the public namespaces: each gets a page listing every public name it offers
NAMESPACES = ["gpuad", "gpuad.linalg", "gpuad.nn", "gpuad.math", "gpuad.random",
              "gpuad.optimizers", "gpuad.optimizers.schedules", "gpuad.train",
              "gpuad.distributed", "gpuad.experimental.dlpack", "gpuad.testing"]


# namespaces that gather ops defined elsewhere (as tf.math and tf.nn do): all their names count
GATHERING = {"gpuad", "gpuad.math", "gpuad.nn", "gpuad.linalg"}


def public_names(module):
    """The names a user reaches in ``module``: public callables (not submodules); outside the
    gathering namespaces, only those the module defines (not its imports)."""
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    keep = []
    for name in sorted(names):
        obj = getattr(module, name)
        if inspect.ismodule(obj) or not callable(obj):
            continue
        home = getattr(obj, "__module__", "") or ""
        if module.__name__ in GATHERING or hasattr(module, "__all__") \
                or home == module.__name__:
            keep.append(name)
    return keep


def _entry(qualified, obj, documented):
    """An autodoc entry for ``obj``, or a link to where it is already documented."""
    if id(obj) in documented:
        return f"- `{qualified.rsplit('.', 1)[1]}`: the same as {{py:obj}}`{documented[id(obj)]}`\n"
    documented[id(obj)] = qualified
    kind = "autoclass" if inspect.isclass(obj) else "autofunction"
    members = "\n   :members:" if inspect.isclass(obj) else ""
    return f"```{{eval-rst}}\n.. {kind}:: {qualified}{members}\n```\n"


def write_reference(app):
    out = DOCS / "reference"
    out.mkdir(exist_ok=True)
    pages, documented = [], {}
    for name in NAMESPACES:
        try:
            module = __import__(name, fromlist=["_"])
        except ImportError:  # an optional namespace that is absent from this tree
            continue
        body = [f"# `{name}`\n", (inspect.getdoc(module) or "").split("\n\n")[0] + "\n"]
        body += [_entry(f"{name}.{n}", getattr(module, n), documented)
                 for n in public_names(module)]
        (out / f"{name}.md").write_text("\n".join(body))
        pages.append(name)
    (out / "index.md").write_text(
        "# API reference\n\nGenerated from the docstrings of every public name.\n\n"
        "```{toctree}\n:maxdepth: 1\n\n" + "\n".join(pages) + "\n```\n")


def setup(app):
    app.connect("builder-inited", write_reference)
