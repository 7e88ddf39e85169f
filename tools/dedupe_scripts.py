"""Sphinx extension: drop script tags that a page would include twice.

jupyter-book 1.x registers sphinx-thebe's inline configuration script twice, which makes the
browser report "Identifier 'THEBE_JS_URL' has already been declared" on every page.
"""

from __future__ import annotations


def _dedupe(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen = set()
    kept = []
    for js in scripts:
        # the same inline script is registered once with filename None and once with ""
        attrs = getattr(js, "attributes", {}) or {}
        key = (getattr(js, "filename", None) or "", tuple(sorted(attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
