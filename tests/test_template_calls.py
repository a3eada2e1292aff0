"""The portal's Jinja compiler calls the environment's plain functions directly (issue 10:
``PortalCodeGenerator``): the same HTML as Jinja's own compiler gives, in either language,
and Jinja's call wherever the direct one would be wrong."""

from __future__ import annotations

import pytest
from jinja2 import pass_context
from jinja2.compiler import CodeGenerator

from portal import PortalCodeGenerator

TEMPLATES = [
    '{{ _("贷款") }}',
    '{{ _("共 %(n)s 期，剩余 %(r)s 期", n=360, r=n) }}',
    '{{ _("%(y)s 年还款计划", y="<b>") }}',  # a variable is escaped, the text is not
    '{% for i in range(3) %}{{ _("贷款") }}{{ url_for("hall.loans", page=i) }}{% endfor %}',
    '{% set kw = {"loan_id": 7} %}{{ url_for("hall.loan_detail", **kw) }}',
    '{% set args = ["hall.loans"] %}{{ url_for(*args) }}',
    '{% macro m(x) %}[{{ _(x) }}|{{ url_for("hall.loans") }}]{% endmacro %}{{ m("贷款") }}',
    '{% set h1, h2 = _("本金"), _("利息") %}{{ h1 }}/{{ h2 }}',
    '{{ (_("贷款") ~ "!")|upper }}',
    '{{ _("贷款") if n else _("还款") }}',
    '{% autoescape false %}{{ _("%(y)s 年还款计划", y="<b>") }}{% endautoescape %}',
    '{% autoescape n > 2 %}{{ _("%(y)s 年还款计划", y="<b>") }}{% endautoescape %}',
    '{% autoescape n > 5 %}{{ _("%(y)s 年还款计划", y="<b>") }}{% endautoescape %}',
]


@pytest.fixture
def envs(app):
    """The portal's environment, and one over the same globals compiled by Jinja's own."""
    reference = app.jinja_env.overlay()
    reference.code_generator_class = CodeGenerator
    assert reference.globals is app.jinja_env.globals
    return app.jinja_env, reference


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("source", TEMPLATES)
def test_same_html_as_jinjas_compiler(app, envs, source, language):
    portal_env, reference = envs
    with app.test_request_context("/", headers={"Accept-Language": language}):
        got = portal_env.from_string(source).render(n=3)
        want = reference.from_string(source).render(n=3)
    assert got == want
    assert got  # every case renders something


def test_english_texts_come_through(app, envs):
    portal_env, _reference = envs
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        source = '{{ _("贷款") }}|{{ _("%(y)s 年还款计划", y="<b>") }}'
        html = portal_env.from_string(source).render()
    assert "贷款" not in html and "年" not in html
    assert "&lt;b&gt;" in html and "<b>" not in html


def test_gettext_and_url_for_compile_to_direct_calls(app):
    code = app.jinja_env.compile(
        '{% for i in items %}{{ _("贷款") }}{{ url_for("hall.loans") }}{% endfor %}', raw=True
    )
    assert "context.call(" not in code
    assert "(context.eval_ctx, '贷款')" in code
    assert "_loop_vars=" not in code  # only Jinja's context.call wants the loop's variables
    # _() gives Markup under autoescape: written as it is; url_for's str is escaped
    gettext = "(undefined(name='_') if l_1__ is missing else l_1__)"
    assert f"{gettext}(context.eval_ctx, '贷款')" in code
    assert f"escape({gettext}" not in code
    assert "escape((undefined(name='url_for')" in code


def test_a_name_bound_in_the_template_keeps_jinjas_call(app, envs):
    """``_`` set in the template, a macro argument named like a global, a call block and a
    function that asks for the context are called as Jinja calls them."""
    portal_env, reference = envs
    sources = [
        '{% set _ = url_for %}{{ _("hall.loans") }}',
        '{% macro m(url_for) %}{{ url_for("x") }}{% endmacro %}{{ m(_) }}',
        '{% macro m() %}<{{ caller() }}>{% endmacro %}{% call m() %}{{ _("贷款") }}{% endcall %}',
        "{{ needs_context() }}",
    ]

    @pass_context
    def needs_context(context):
        return context["marker"]

    portal_env.globals["needs_context"] = needs_context
    try:
        with app.test_request_context("/"):
            for source in sources:
                code = portal_env.compile(source, raw=True)
                assert "context.call(" in code, source
                got = portal_env.from_string(source).render(marker="M")
                assert got == reference.from_string(source).render(marker="M"), source
                assert got
    finally:
        del portal_env.globals["needs_context"]


def test_the_portal_environment_uses_it(app):
    assert app.jinja_env.code_generator_class is PortalCodeGenerator


def test_a_global_marked_as_giving_markup_is_written_unescaped(app, envs):
    """``markup_under_autoescape`` on the function, not the name ``_``, decides it."""
    from markupsafe import Markup

    portal_env, reference = envs

    def badge(text):
        return Markup("<b>%s</b>") % text

    badge.markup_under_autoescape = True
    portal_env.globals["badge"] = badge
    try:
        source = '{{ badge("<i>") }}{{ url_for("hall.loans") }}'
        code = portal_env.compile(source, raw=True)
        badge_call = "(undefined(name='badge') if l_0_badge is missing else l_0_badge)("
        assert badge_call in code and f"escape({badge_call}" not in code
        assert "escape((undefined(name='url_for')" in code
        with app.test_request_context("/"):
            got = portal_env.from_string(source).render()
            assert got == reference.from_string(source).render()
        assert got.startswith("<b>&lt;i&gt;</b>")
    finally:
        del portal_env.globals["badge"]


JOINED = [
    "plain text only",
    "<p>{{ a }}</p>",
    "<p>{{ a }} and {{ b }}</p>{% if n %}<i>{{ a }}</i>{% endif %}{{ b }}",
    "{%- for i in range(n) -%} <li>{{ i }}:{{ a }}</li> {%- endfor %}",
    "{% for i in range(n) %}{{ loop.index }}/{{ loop.length }}{% if not loop.last %}, {% endif %}"
    "{% endfor %}",
    "{% set x %}<b>{{ a }}</b>{{ b }}{% endset %}[{{ x }}]{{ x|length }}",
    "{% filter upper %}{{ a }}-{{ b }}{% endfilter %}",
    "{% macro m(v) %}<{{ v }}|{{ caller() if caller else '' }}>{% endmacro %}"
    "{{ m(a) }}{% call m(b) %}in {{ a }}{% endcall %}",
    "{% autoescape false %}{{ a }}{{ b }}{% endautoescape %}{{ a }}{{ b }}",
    "{% autoescape n > 2 %}{{ a }}{{ b }}{% endautoescape %}",
    "{{ a }}{{ 1 + 2 }}{{ 'const' }}{{ b|e }}{{ none }}{{ n }}",
    '{{ _("贷款") }}：{{ url_for("hall.loans") }}{{ _("%(y)s 年", y=a) }}',
    '{% include "include_me.html" %}after {{ a }}',
    '{% extends "layout.html" %}ignored {{ a }}{% block body %}[{{ super() }}|{{ b }}]'
    "{% endblock %}",
    '{% extends ("layout.html" if n else "other.html") %}{% block body %}{{ a }}{% endblock %}',
]


@pytest.mark.parametrize("source", JOINED)
def test_joined_outputs_give_the_same_html_as_jinjas_compiler(app, envs, source):
    """The pieces of one output are joined and yielded once (``visit_Output``): the same text
    as Jinja's one yield each, in blocks, includes, extends (static and dynamic), macros, call
    and set blocks, filters, loops and whitespace control, with autoescape on, off or decided
    at run time."""
    from jinja2 import DictLoader

    portal_env, reference = envs
    sources = {
        "include_me.html": "<inc>{{ a }}{{ b }}</inc>",
        "layout.html": "<html>{{ a }}<body>{% block body %}base {{ b }}{% endblock %}</body>",
        "other.html": "",
    }
    rendered = []
    for env in (portal_env, reference):
        env.loader, saved = DictLoader(sources), env.loader
        try:
            with app.test_request_context("/"):
                html = env.from_string(source).render(a="<a&>", b='"b"', n=3)
        finally:
            env.loader = saved
        rendered.append(html)
    got, want = rendered
    assert got == want and got


def test_outputs_of_several_pieces_are_yielded_once(app):
    code = app.jinja_env.compile("<p>{{ a }} and {{ b }}</p>{% if a %}{{ a }}{% endif %}", raw=True)
    assert code.count("yield ''.join((") == 1  # the first output; the second is one piece
    assert "yield escape((undefined(name='a')" in code
    # a buffer (a macro's body) is Jinja's own
    code = app.jinja_env.compile("{% macro m() %}<p>{{ a }}{{ b }}</p>{% endmacro %}", raw=True)
    assert "yield ''.join" not in code and ".extend((" in code
