"""portal.warm_up (issue 10): what gunicorn's master loads before it forks its workers, so they
share it: every template compiled, the catalogues read, one PDF written."""

from __future__ import annotations

from portal import pdf, warm_up


def test_warm_up_compiles_every_template_and_prepares_the_pdf_font(app, client, monkeypatch):
    monkeypatch.setattr(pdf, "_FONT_TEMPLATES", {})
    env = app.jinja_env
    monkeypatch.setattr(env, "cache", type(env.cache)(10))  # smaller than the templates
    warm_up(app)
    names = env.list_templates(extensions=("html", "txt", "xml"))
    assert len(names) > 100
    cached = {key[1] for key in env.cache.keys()}  # (loader ref, name)
    assert set(names) <= cached  # the cache grew to hold them all
    assert pdf._FONT_TEMPLATES, "the font template is built"
    # pages still render after it, in both languages
    assert "住房公积金" in client.get("/").get_data(as_text=True)
    assert client.get("/?lang=en").status_code == 200
