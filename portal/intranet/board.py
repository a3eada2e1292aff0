"""The kanban boards (DESIGN.md section 4), under /staff/board/.

Two boards, outbound and inbound. A card moves by drag and drop (``static/js/board.js`` posts
the drop) or by its "移至…" menu, both to the same endpoint; the answer swaps the affected
columns out of band. A move that needs data (a reason, the missing materials, a result, a
department) first answers with the card carrying its inline form. The board polls for changes
(``X-Portal-Poll: 1``, 204 when nothing changed). Every URL also renders a full page.
"""

from __future__ import annotations

import json
import secrets
from types import SimpleNamespace
from urllib.parse import urlparse

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from jinja2 import pass_context
from markupsafe import Markup, escape

from portal import fragments, htmx
from portal.access import guard_kind, require_roles
from portal.intranet import board_forms, common
from portal.rules import casestates
from portal.services import cases

bp = Blueprint("board", __name__, url_prefix="/staff/board")
bp.before_request(guard_kind("staff"))

_URL_ID = "987654321"  # stands for a case id in a URL pattern


@bp.app_template_global()
def case_url(endpoint: str, case_id: int) -> str:
    """``url_for(endpoint, case_id=case_id)`` for the many cards of a board, from a pattern
    built once per request and endpoint (issue 10: url_for was a card's costliest call)."""
    patterns = g.setdefault("case_url_patterns", {})
    pattern = patterns.get(endpoint)
    if pattern is None:
        pattern = patterns[endpoint] = url_for(endpoint, case_id=int(_URL_ID))
    return pattern.replace(_URL_ID, str(int(case_id)))


# --- a card's HTML, kept (issue 10) -------------------------------------------------------
# A board shows dozens of cards and rendering them was half of its time. A card's HTML is a
# function of the card (``cases.Card``: a frozen value holding everything the card shows for
# this user today, its move targets included), the card template, the language, the mount
# point, whether the answer is an htmx fragment and whether the card keeps an open inline
# form; each worker keeps the HTML under those (``portal.fragments``). The CSRF field differs
# per session: the kept HTML holds a slot that only this process knows, filled with the
# request's token on the way out. A card with its inline form open is never kept.
# ``PORTAL_HTML_CACHE=0`` turns it off.

CARD_TEMPLATE = "intranet/_card.html"
_CSRF_SLOT = f"\x00{secrets.token_hex(8)}\x00"  # no data can hold it: never shown, per process
_card_cache: fragments.FragmentCache[tuple[str, ...]] = fragments.FragmentCache(4096)  # ~1 KB each


def _csrf_slot() -> str:
    return _CSRF_SLOT


def _csrf() -> str:
    """This session's CSRF token, escaped as the card template would, once per request."""
    found = g.get("card_csrf")
    if found is None:
        found = g.card_csrf = str(escape(generate_csrf()))
    return found


@bp.app_template_global()
@pass_context
def card_html(ctx, card: cases.Card) -> Markup:
    """One card's HTML (``intranet/_card.html``), from this worker's cache when it has it."""
    return Markup(_card_html(ctx, card))  # noqa: S704  # nosec B704 - the card template's output


def _card_html(ctx, card: cases.Card) -> str:
    shared = fragments.request_key(ctx.environment, CARD_TEMPLATE)
    template = shared[0]
    inline = ctx.get("inline")
    if not fragments.enabled() or (inline and inline["case_id"] == card.id):
        return template.render({**ctx.get_all(), "card": card})
    fragment = bool(ctx.get("htmx_fragment"))
    keep = bool(ctx.get("preserve")) and card.id != ctx.get("fresh_id")

    def render() -> tuple[str, ...]:
        context = {**ctx.get_all(), "card": card, "csrf_token": _csrf_slot}
        return tuple(template.render(context).split(_CSRF_SLOT))

    return _with_csrf(_card_cache.get((card, fragment, keep, shared), render))


def _with_csrf(parts: tuple[str, ...]) -> str:
    """Kept HTML split at its CSRF slots, with this session's token in them."""
    return parts[0] if len(parts) == 1 else _csrf().join(parts)


# --- a column's HTML, kept (issue 10) -----------------------------------------------------
# With its cards kept, a board still spent a quarter of its time putting columns together
# (head, cards, 加载更多). A column's HTML is a function of the column (``cases.Column``: a
# frozen value holding its cards, counts, limit and token), the board's direction and
# filters (the 加载更多 link), the page size, whether the answer is an htmx fragment, an
# out-of-band swap or a poll that keeps open forms, the template, the language and the mount
# point; each worker keeps it under those. The cards' CSRF fields stay a slot in the kept
# HTML, filled per request as for a card. A column with a card's inline form open is never
# kept.

COLUMN_TEMPLATE = "intranet/_board_column.html"
_column_cache: fragments.FragmentCache[tuple[str, ...]] = fragments.FragmentCache(512)


@bp.app_template_global()
@pass_context
def column_html(ctx, col: cases.Column) -> Markup:
    """One column's HTML (``intranet/_board_column.html``), from this worker's cache when it
    has it."""
    shared = fragments.request_key(ctx.environment, COLUMN_TEMPLATE)
    template = shared[0]
    if not fragments.enabled() or ctx.get("inline"):
        return Markup(template.render({**ctx.get_all(), "col": col}))  # noqa: S704  # nosec B704
    board = ctx["board"]
    key = (
        col,
        board.direction,
        board.filters,
        ctx.get("page_size"),
        bool(ctx.get("htmx_fragment")),
        bool(ctx.get("oob")),
        bool(ctx.get("preserve")),
        ctx.get("fresh_id"),
        shared,
    )

    def render() -> tuple[str, ...]:
        token = g.get("card_csrf")
        g.card_csrf = _CSRF_SLOT  # the cards leave their slot in place
        try:
            return tuple(template.render({**ctx.get_all(), "col": col}).split(_CSRF_SLOT))
        finally:
            if token is None:
                g.pop("card_csrf", None)
            else:
                g.card_csrf = token

    html = _with_csrf(_column_cache.get(key, render))
    return Markup(html)  # noqa: S704  # nosec B704 - the column template's output


# The filter form: the same few choices on every page of a board, kept likewise under what
# it shows (the direction, the values chosen, the choices offered, language, mount point).
FILTERS_TEMPLATE = "intranet/_board_filters.html"
_filters_cache: fragments.FragmentCache[str] = fragments.FragmentCache(256)


@bp.app_template_global()
@pass_context
def board_filters_html(ctx) -> Markup:
    """The board's filter form (``intranet/_board_filters.html``), kept per worker."""
    shared = fragments.request_key(ctx.environment, FILTERS_TEMPLATE)
    template = shared[0]
    if not fragments.enabled():
        return Markup(template.render(ctx.get_all()))  # noqa: S704  # nosec B704
    form, board = ctx["filter_form"], ctx["board"]
    key = (
        board.direction,
        board.filters,
        tuple((field.name, field.data) for field in form),
        tuple(
            tuple((c.value, str(c.label)) for c in field.choices)
            for field in (form.item, form.dept, form.assignee)
        ),
        shared,
    )
    html = _filters_cache.get(key, lambda: template.render(ctx.get_all()))
    return Markup(html)  # noqa: S704  # nosec B704 - the filter template's output


DIRECTION = "any(outbound, inbound)"


def _check_board(direction: str) -> None:
    user = common.staff_user()
    if user.role not in cases.BOARD_ROLES or direction not in cases.board_directions(user):
        abort(403)


def _shown(values) -> dict[str, int]:
    """How many cards the client shows per column (``n_<state>``, after "加载更多")."""
    out = {}
    for key in values:
        value = values.get(key, "")
        if key.startswith("n_") and value.isdigit():
            out[key[2:]] = int(value)
    return out


def _tokens(values) -> dict[str, str]:
    return {key[2:]: values.get(key) for key in values if key.startswith("v_")}


def _version() -> str | None:
    """The boards' data version, read once per request (None: nothing is kept)."""
    if not fragments.enabled():
        return None
    if "board_version" not in g:
        g.board_version = cases.board_version()
    return g.board_version


def _filters(direction: str, values, *, kept: bool = True):
    """The filter form and filters; ``kept``: the choices from this worker's copy while the
    boards' data is unchanged (not after a move: the data has just changed)."""
    choices = cases.filter_choices(
        common.staff_user(), direction, version=_version() if kept else None
    )
    return board_forms.filter_form(values, choices)


def _only_filters(direction: str, values, *, kept: bool = True) -> cases.Filters:
    """The filters alone, for answers that show no filter form (a poll, "加载更多", a move's
    answer): with none of the filter fields in ``values`` there is nothing to check against
    the choices, so neither the choices nor the form are made (issue 10: a tenth of a move's
    answer was building a form it did not show)."""
    if not any(name in values for name in board_forms.FILTER_FIELDS):
        return cases.Filters()
    return _filters(direction, values, kept=kept)[1]


def _render(page_template: str, fragment: str, status: int = 200, **context):
    """Like ``htmx.render``, but a history-restore request gets the whole page."""
    partial = htmx.is_htmx() and not request.headers.get("HX-History-Restore-Request")
    template = fragment if partial else page_template
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


@bp.app_template_global("staff_board_links")
def staff_board_links() -> list[common.NavLink]:
    """The board links of the staff navigation for whoever is logged in."""
    if not current_user.is_authenticated or current_user.kind != "staff":
        return []
    user = current_user.obj
    links = [
        common.NavLink(d, cases.DIRECTION_LABELS[d], url_for("board.board", direction=d))
        for d in cases.board_directions(user)
        if user.role in cases.BOARD_ROLES
    ]
    if user.role == "admin":
        links.append(common.NavLink("limits", "看板列上限", url_for("board.limits")))
    return links


@bp.app_template_global("board_url")
def board_url(direction: str, filters: cases.Filters | None = None, **extra) -> str:
    args = dict(filters.args()) if filters else {}
    args.update({k: v for k, v in extra.items() if v is not None})
    return url_for("board.board", direction=direction, **args)


# --- the boards ---------------------------------------------------------------------------


@bp.get("/")
def index():
    directions = cases.board_directions(common.staff_user())
    if common.staff_user().role not in cases.BOARD_ROLES or not directions:
        abort(403)
    return redirect(url_for(".board", direction=directions[0]))


def _board_view(direction: str, filters, values, only: set[str] | None = None):
    """The board as the logged-in user sees it today; ``values`` (the request's args or form)
    say how many cards each column shows."""
    return cases.board(
        common.staff_user(),
        direction,
        filters,
        common.today(),
        common.holiday_overrides(per_request=True),
        shown=_shown(values),
        only=only,
        version=_version() if only is None else None,
    )


@bp.get(f"/<{DIRECTION}:direction>")
def board(direction: str):
    _check_board(direction)
    form, filters = _filters(direction, request.args)
    view = _board_view(direction, filters, request.args)
    return _render(
        "intranet/board.html",
        "intranet/_board_body.html",
        board=view,
        filter_form=form,
        preserve=False,
        page_size=cases.MORE,
    )


@bp.get(f"/<{DIRECTION}:direction>/poll")
def poll(direction: str):
    """Background polling: 204 when no column changed, else the columns to swap in."""
    _check_board(direction)
    filters = _only_filters(direction, request.args)
    if not htmx.is_htmx():
        return redirect(board_url(direction, filters))
    view = cases.changed_board(
        common.staff_user(),
        direction,
        filters,
        common.today(),
        _tokens(request.args),
        common.holiday_overrides(per_request=True),
        shown=_shown(request.args),
        version=_version(),
    )
    if view is None:
        response = make_response("", 204)
    else:
        response = make_response(
            render_template(
                "intranet/_board_poll.html", board=view, preserve=True, page_size=cases.MORE
            )
        )
    response.vary.add("HX-Request")
    return response


@bp.get(f"/<{DIRECTION}:direction>/column/<state>")
def column_more(direction: str, state: str):
    """加载更多: the next cards of a long column."""
    _check_board(direction)
    if state not in casestates.COLUMNS[direction]:
        abort(404)
    filters = _only_filters(direction, request.args)
    offset = request.args.get("offset", default=cases.PAGE, type=int)
    if not htmx.is_htmx():
        return redirect(board_url(direction, filters, **{f"n_{state}": offset + cases.MORE}))
    cards, count = cases.more_cards(
        common.staff_user(),
        direction,
        state,
        filters,
        common.today(),
        offset,
        common.holiday_overrides(per_request=True),
    )
    view = SimpleNamespace(direction=direction, filters=filters)  # for the links
    shown = min(count, offset + len(cards))
    response = make_response(
        render_template(
            "intranet/_board_more.html",
            board=view,
            cards=cards,
            state=state,
            direction=direction,
            shown=shown,
            count=count,
            remaining_text=cases.remaining_text(count, shown, state in casestates.FINAL[direction]),
            preserve=False,
            page_size=cases.MORE,
        )
    )
    response.vary.add("HX-Request")
    return response


# --- a case -------------------------------------------------------------------------------


def _case_or_404(case_id: int):
    if common.staff_user().role not in cases.BOARD_ROLES:
        abort(403)
    try:
        return cases.get_case(common.staff_user(), case_id)
    except cases.NotFound:
        abort(404)


def _attachment_url():
    """How the detail links an attachment: the counter's download, once it is installed."""
    if "counter.material" not in current_app.view_functions:
        return None

    def url(case_no: str, attachment_id: int) -> str:
        return url_for("counter.material", case_no=case_no, attachment_id=attachment_id)

    return url


def _detail_context(case_id: int, **forms):
    try:
        detail = cases.detail(
            common.staff_user(), case_id, common.today(), common.holiday_overrides(per_request=True)
        )
    except cases.NotFound:
        abort(404)
    assign = forms.get("assign_form") or board_forms.AssignForm(formdata=None)
    assign.handler.choices = board_forms.select_choices(
        [("", "请选择")] + [(str(i), n) for i, n in detail.handlers]
    )
    if assign.version.data is None:
        assign.version.data = detail.card.version
    return dict(
        detail=detail,
        attachment_url=_attachment_url(),
        comment_form=forms.get("comment_form") or board_forms.CommentForm(formdata=None),
        mail_form=forms.get("mail_form")
        or board_forms.MailForm(formdata=None, data={"tracking_no": detail.tracking_no}),
        assign_form=assign,
    )


@bp.get("/case/<int:case_id>")
def case_detail(case_id: int):
    case = _case_or_404(case_id)
    context = _detail_context(case_id)
    return _render(
        "intranet/board_case.html",
        "intranet/_card_detail.html",
        page=not htmx.is_htmx(),
        direction=case.direction,
        **context,
    )


@bp.get("/case/<int:case_id>/card")
def case_card(case_id: int):
    """One card (the inline form's 取消 asks for it); without htmx, the case page."""
    _case_or_404(case_id)
    if not htmx.is_htmx():
        return redirect(url_for(".case_detail", case_id=case_id))
    card = cases.card(
        common.staff_user(), case_id, common.today(), common.holiday_overrides(per_request=True)
    )
    response = make_response(
        render_template("intranet/_card.html", card=card, preserve=False, inline=None)
    )
    response.vary.add("HX-Request")
    return response


# --- moving a card ------------------------------------------------------------------------


def _client_columns(case, states: set[str]) -> dict[str, list[int]] | None:
    """The cards the client shows in these columns before the move, in order (board.js sends
    them with a move as ``seen_<state>``: ids separated by commas); None when it did not (then
    the move answers with whole columns). Issue 10: an answer that is only the difference stays
    a few KB on a busy board, and also brings what others changed in these columns."""
    states = {s for s in states | {case.state} if s in casestates.COLUMNS[case.direction]}
    if not htmx.is_htmx() or not states:
        return None
    seen = {}
    for state in states:
        raw = request.values.get(f"seen_{state}")
        if raw is None:
            return None
        ids = [part for part in raw.split(",") if part]
        if len(ids) > cases.MAX_SHOWN + cases.MORE or not all(p.isdigit() for p in ids):
            return None
        seen[state] = [int(p) for p in ids]
    return seen


def _difference(view, before: dict[str, list[int]], fresh_id: int):
    """The out-of-band edits that turn the client's columns (``before``) into ``view``'s: the
    cards to take out, then each card to put in with where (in reverse board order, so the
    card it goes before is already there). The moved card is always taken out and put back."""
    deletes = [fresh_id]
    inserts = []
    for col in view.columns:
        after = [c.id for c in col.cards]
        keep = (set(before.get(col.state, ())) & set(after)) - {fresh_id}
        deletes += [i for i in before.get(col.state, ()) if i not in keep and i != fresh_id]
        for k in range(len(col.cards) - 1, -1, -1):
            card = col.cards[k]
            if card.id in keep:
                continue
            place = (
                f"beforebegin:#case-{col.cards[k + 1].id}"
                if k + 1 < len(col.cards)
                else f"beforeend:#cards-{col.state}"
            )
            inserts.append((place, card))
    return deletes, inserts


def _move_answer(
    case,
    states: set[str],
    message: str,
    status: int,
    level: str,
    inline: dict | None = None,
):
    """The answer to a move, however it ended: the affected columns, swapped out of band,
    with the card in its real column, and the message for the aria-live region. A client that
    said what it shows (``g.board_before``) gets only what changed in those columns."""
    if not htmx.is_htmx():
        flash(message, "success" if level == "success" else "error")
        return redirect(url_for(".board", direction=case.direction), 303)
    direction = case.direction
    filters = _only_filters(direction, request.values, kept=False)
    wanted = {s for s in states | {case.state} if s in casestates.COLUMNS[direction]}
    view = _board_view(direction, filters, request.values, only=wanted)
    before = g.get("board_before")
    if before is not None and not wanted <= set(before):
        before = None  # the card is in a column the client did not describe: whole columns
    deletes, inserts = _difference(view, before, case.id) if before is not None else ((), ())
    response = make_response(
        render_template(
            "intranet/_board_move.html",
            board=view,
            message=message,
            level=level,
            fresh_id=case.id,
            inline=inline,
            preserve=True,
            page_size=cases.MORE,
            difference=before is not None,
            deletes=deletes,
            inserts=inserts,
        ),
        status,
    )
    response.vary.add("HX-Request")
    # keyboard users keep their place: the card gets the focus if the swap took it away
    response.headers["HX-Trigger-After-Settle"] = json.dumps(
        {"board:moved": {"focus": f"case-{case.id}-no"}}
    )
    return response


def _needs_data(case, target: str, form, client_states: set[str], status: int):
    """The move needs data first: the card comes back with its inline form."""
    what = casestates.REQUIREMENT_LABELS[form.kind]
    to = casestates.label(case.direction, target)
    if not htmx.is_htmx():
        card = cases.card(
            common.staff_user(), case.id, common.today(), common.holiday_overrides(per_request=True)
        )
        return make_response(
            render_template(
                "intranet/board_move.html",
                card=card,
                inline={"case_id": case.id, "form": form, "target": target},
                target_label=to,
            ),
            status,
        )
    message = (
        f"移至“{to}”前请填写{what}"
        if status == 200
        else f"{what}填写有误，请按提示修改后再确认移动"
    )
    return _move_answer(
        case,
        client_states,
        message,
        status,
        "info" if status == 200 else "error",
        inline={"case_id": case.id, "form": form, "target": target},
    )


@bp.post("/case/<int:case_id>/move")
@require_roles(*cases.MOVER_ROLES)
def move(case_id: int):
    user = common.staff_user()
    case = _case_or_404(case_id)
    form = board_forms.MoveForm()
    from_state = form.from_state.data or case.state
    target = form.target.data or ""
    client_states = {from_state, target}
    g.board_before = _client_columns(case, client_states)
    if not form.validate():
        return _move_answer(case, client_states, common.first_error(form), 422, "error")
    version = form.version.data
    try:
        case, move_ = cases.plan_move(user, case_id, target, version, case=case)
        data = None
        if move_.requires:
            submitted = form.with_data.data == "1"
            dform = board_forms.requirement_form(
                move_.requires, case, request.form if submitted else None
            )
            if not submitted:
                return _needs_data(case, target, dform, client_states, 200)
            if not dform.validate():
                return _needs_data(case, target, dform, client_states, 422)
            data = dform.payload()
        source = case.state
        case = cases.move_case(
            user,
            case_id,
            target,
            version,
            data,
            today=common.today(),
            overrides=common.holiday_overrides(per_request=True),
        )
    except cases.NotFound:
        abort(404)
    except cases.Conflict as exc:
        return _move_answer(exc.case, client_states, exc.message, 409, "error")
    except cases.Refused as exc:
        fresh = cases.get_case(user, case_id)
        return _move_answer(fresh, client_states, exc.message, 409, "error")
    message = (
        f"已将 {case.case_no} 从“{casestates.label(case.direction, source)}”"
        f"移至“{casestates.label(case.direction, target)}”"
    )
    return _move_answer(case, client_states | {source}, message, 200, "success")


# --- other actions on a case --------------------------------------------------------------


def _action_answer(case_id: int, message: str, status: int, **forms):
    """After take / assign / mail / comment: the detail (or the card) fresh, and the message."""
    ok = status < 400
    if not htmx.is_htmx():
        flash(message, "success" if ok else "error")
        return redirect(url_for(".case_detail", case_id=case_id), 303)
    level = "success" if ok else "error"
    if request.headers.get("HX-Target") == f"case-{case_id}":
        card = cases.card(
            common.staff_user(), case_id, common.today(), common.holiday_overrides(per_request=True)
        )
        body = render_template(
            "intranet/_card_action.html",
            card=card,
            preserve=True,
            inline=None,
            message=message,
            level=level,
        )
    else:
        context = _detail_context(case_id, **forms)
        on_its_page = urlparse(request.headers.get("HX-Current-URL", "")).path == url_for(
            ".case_detail", case_id=case_id
        )
        body = render_template(
            "intranet/_card_detail_action.html",
            page=on_its_page,
            message=message,
            level=level,
            **context,
        )
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


@bp.post("/case/<int:case_id>/take")
@require_roles("handler")
def take(case_id: int):
    _case_or_404(case_id)
    form = board_forms.VersionForm()
    if not form.validate():
        return _action_answer(case_id, "页面已过期，请刷新后重试", 409)
    try:
        case = cases.take_case(common.staff_user(), case_id, form.version.data)
    except cases.NotFound:
        abort(404)
    except cases.Refused as exc:
        return _action_answer(case_id, exc.message, 409)
    return _action_answer(case_id, f"已领取 {case.case_no}", 200)


@bp.post("/case/<int:case_id>/assign")
@require_roles("liaison")
def assign(case_id: int):
    _case_or_404(case_id)
    detail = cases.detail(
        common.staff_user(), case_id, common.today(), common.holiday_overrides(per_request=True)
    )
    form = board_forms.AssignForm()
    form.handler.choices = board_forms.select_choices(
        [("", "请选择")] + [(str(i), n) for i, n in detail.handlers]
    )
    if not form.validate():
        return _action_answer(case_id, common.first_error(form), 422, assign_form=form)
    try:
        case = cases.assign_case(
            common.staff_user(), case_id, int(form.handler.data), form.version.data
        )
    except cases.NotFound:
        abort(404)
    except cases.Refused as exc:
        return _action_answer(case_id, exc.message, 409)
    return _action_answer(case_id, f"已将 {case.case_no} 指派给{case.assignee.name}", 200)


@bp.post("/case/<int:case_id>/mail")
@require_roles("liaison")
def mail(case_id: int):
    _case_or_404(case_id)
    form = board_forms.MailForm()
    if not form.validate():
        return _action_answer(case_id, common.first_error(form), 422, mail_form=form)
    try:
        case = cases.record_mailing(common.staff_user(), case_id, form.tracking_no.data)
    except cases.NotFound:
        abort(404)
    except cases.Refused as exc:
        return _action_answer(case_id, exc.message, 409, mail_form=form)
    return _action_answer(case_id, f"已登记邮寄单号 {case.tracking_no}", 200)


@bp.post("/case/<int:case_id>/comments")
@require_roles(*cases.MOVER_ROLES)
def comment(case_id: int):
    _case_or_404(case_id)
    form = board_forms.CommentForm()
    if not form.validate():
        return _action_answer(case_id, common.first_error(form), 422, comment_form=form)
    try:
        cases.add_comment(common.staff_user(), case_id, form.body.data)
    except cases.NotFound:
        abort(404)
    except cases.Refused as exc:
        return _action_answer(case_id, exc.message, 409, comment_form=form)
    return _action_answer(case_id, "评论已添加", 200)


# --- the admin's column limits ------------------------------------------------------------


@bp.route("/limits", methods=["GET", "POST"])
@require_roles("admin")
def limits():
    today = common.today()
    current = {
        (direction, state): value
        for direction in casestates.COLUMNS
        for state, value in cases.wip_limits(direction, today).items()
    }
    posted = request.method == "POST"
    form = board_forms.limits_form(request.form if posted else None, current)
    if posted and form.validate():
        values = {
            (direction, state): getattr(form, board_forms.limit_field_name(direction, state)).data
            for direction, states in casestates.COLUMNS.items()
            for state in states
        }
        try:
            changed = cases.set_wip_limits(common.staff_user(), values, today)
        except cases.Refused as exc:
            flash(exc.message, "error")
        else:
            flash("看板列上限已保存" if changed else "没有修改", "success")
            return redirect(url_for(".limits"), 303)
    return (
        render_template("intranet/board_limits.html", form=form, columns=casestates.COLUMNS),
        422 if posted else 200,
    )
