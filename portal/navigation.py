"""The navigation bars under the header: the depositor's hall, the employer's hall and the
staff's links for their role (``templates/_nav.html``).

Every page draws one, and drawing it was a tenth of a simple page (issue 10: a dozen URLs, as
many translations, a macro). Its HTML is a function of the bar, the active link, the staff's
links (their keys, labels and URLs: a count in a label, such as 待复核（3）, is part of it),
the language and the mount point, so each worker keeps it under those (``portal.fragments``);
the staff's links are still asked for on every page (their counts change).
"""

from __future__ import annotations

from flask import current_app, url_for
from flask_login import current_user
from jinja2 import Undefined, pass_context
from markupsafe import Markup

from portal import fragments

NAV_TEMPLATE = "_nav.html"
BARS = ("hall", "employer", "staff")
# the template globals that give the staff's links, in the order the bar shows them
STAFF_LINK_GLOBALS = (
    "staff_board_links",
    "staff_counter_links",
    "staff_processing_links",
    "staff_exchange_links",
    "staff_rating_links",
    "staff_job_links",
)
_bars: fragments.FragmentCache[str] = fragments.FragmentCache(512)


def staff_links() -> tuple[tuple[str, str, str], ...]:
    """(key, URL, label) of each link of the staff navigation for whoever is logged in."""
    if not current_user.is_authenticated or current_user.kind != "staff":
        return ()
    links = [("home", url_for("intranet.home"), "工作台")]
    known = current_app.jinja_env.globals
    for name in STAFF_LINK_GLOBALS:
        give = known.get(name)
        if give is not None:
            links.extend((link.key, link.url, link.label) for link in give())
    return tuple(links)


@pass_context
def nav_bar(ctx, bar: str, active: str | None = None) -> Markup:
    """One navigation bar's HTML, from this worker's cache when it has it."""
    if bar not in BARS:
        raise ValueError(f"no navigation bar {bar!r}")
    if isinstance(active, Undefined):  # a page that marks no link
        active = None
    links = staff_links() if bar == "staff" else ()
    template, *shared = fragments.request_key(ctx.environment, NAV_TEMPLATE)

    def render() -> str:
        return template.render(bar=bar, active=active, staff_links=links)

    if not fragments.enabled():
        return Markup(render())  # noqa: S704  # nosec B704 - the template's output
    html = _bars.get((bar, active, links, template, *shared), render)
    return Markup(html)  # noqa: S704  # nosec B704 - the template's output


def init_app(app) -> None:
    app.add_template_global(nav_bar, "nav_bar")
