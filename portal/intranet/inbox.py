"""站内消息 for staff at /staff/inbox/: the same views as the public inboxes
(``portal.public.inbox``), behind the staff guard."""

from __future__ import annotations

from portal.public.inbox import make_blueprint

bp = make_blueprint("staff_inbox", "/staff/inbox", "staff")
