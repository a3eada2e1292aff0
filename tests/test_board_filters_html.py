"""The board's filter selects are written by a template macro (issue 10); they are the HTML
WTForms' own widget gives, whatever is chosen, in both languages."""

from __future__ import annotations

import re

import pytest
from werkzeug.datastructures import MultiDict

from portal.i18n import translate_html
from portal.intranet import board_forms
from portal.services import cases
from tests.board_helpers import department, staff
from tests.conftest import login_staff

SELECT = re.compile(r'<select id="f-(\w+)".*?</select>', re.S)


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_the_selects_are_what_wtforms_renders(app, client, lang):
    login_staff(client, "liaison")
    client.set_cookie("hpf_lang", lang)
    dept = str(department("AZQ").id)
    handler = str(staff("handler").id)
    for direction in ("outbound", "inbound"):
        for args in (
            {},
            {"item": "purchase_withdrawal", "dept": dept, "assignee": "none"},
            {"item": "nonsense", "dept": "999", "assignee": handler, "overdue": "y"},
        ):
            html = client.get(f"/staff/board/{direction}", query_string=args).get_data(as_text=True)
            shown = {m.group(1): m.group(0) for m in SELECT.finditer(html)}
            assert {"item", "dept"} <= set(shown)
            with app.test_request_context(headers={"Cookie": f"hpf_lang={lang}"}):
                user = staff("liaison")
                form, _filters = board_forms.filter_form(
                    MultiDict(args), cases.filter_choices(user, direction)
                )
                for name, select in shown.items():
                    widget = str(getattr(form, name)(id=f"f-{name}"))
                    # an English page's data texts (item names) are translated on the way out
                    assert select == translate_html(widget), (direction, args)
            if args.get("dept") == dept:
                assert f'<option selected value="{dept}">' in shown["dept"]
