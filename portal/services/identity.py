"""Who someone is: passwords, one-time codes by SMS, staff TOTP, login checks.

Every failure for a login says the same thing to the caller (``LoginFailed``), so a form
never tells which part was wrong.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, timedelta
from functools import lru_cache
from pathlib import Path

import pyotp
from werkzeug.security import check_password_hash, generate_password_hash

from portal.db import write_tx
from portal.models import (
    Depositor,
    Employer,
    EmployerOperator,
    OtpChallenge,
    StaffUser,
    utcnow,
)
from portal.rules.ids import mask_resident_id, normalize_resident_id
from portal.services import audit, lockout, sms

CODE_INTERVAL = 300  # seconds an SMS code stays valid
_CODE_STEP = 60  # pyotp step; the code is fixed to the challenge's creation time
MAX_CODE_ATTEMPTS = 5
MIN_PASSWORD = 8
_DUMMY_HASH = generate_password_hash("timing-equaliser", method="scrypt")

PURPOSE_TEXT = {
    "login": "登录",
    "activate": "首次登录设置密码",
    "reset": "重置密码",
    "change": "信息变更",
    "change_new": "新手机号验证",
    "withdraw": "退休提取",
    "payoff": "提前还清贷款",
}


class LoginFailed(Exception):
    """Wrong credentials (deliberately unspecific)."""


class CodeFailed(Exception):
    """A one-time code was wrong, expired or already used."""


class PasswordRejected(ValueError):
    pass


# scrypt (n=2**15, r=8) takes 32 MB while it runs: one hash at a time per process keeps a
# worker's peak memory down when logins arrive together (issue 10); they queue for ~50 ms.
_HASHING = threading.Lock()


def hash_password(password: str) -> str:
    with _HASHING:
        return generate_password_hash(password, method="scrypt")


def check_password(stored: str | None, password: str) -> bool:
    with _HASHING:
        if not stored:
            check_password_hash(_DUMMY_HASH, password)  # same time as a real check
            return False
        return check_password_hash(stored, password)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    path = Path(__file__).resolve().parent.parent / "data" / "common_passwords.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(ln.strip().lower() for ln in lines if ln.strip() and not ln.startswith("#"))


def validate_new_password(password: str, confirm: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise PasswordRejected(f"密码至少 {MIN_PASSWORD} 位")
    if password != confirm:
        raise PasswordRejected("两次输入的密码不一致")
    if password.isdigit() or password.isalpha():
        raise PasswordRejected("密码需同时包含字母和数字")
    if password.lower() in common_passwords():
        raise PasswordRejected("该密码过于常见，请换一个")


# --- SMS one-time codes -------------------------------------------------------------------


def _code_for(challenge: OtpChallenge) -> str:
    created = challenge.created_at.replace(tzinfo=UTC)
    return pyotp.TOTP(challenge.secret, interval=_CODE_STEP).at(created)


def send_code(purpose: str, subject: str, phone: str) -> OtpChallenge:
    """Create a challenge and text its code. The code is a pyotp TOTP of a fresh secret."""
    secret = pyotp.random_base32()
    now = utcnow()
    challenge = OtpChallenge.create(
        purpose=purpose,
        subject=subject,
        phone=phone,
        secret=secret,
        created_at=now,
        expires_at=now + timedelta(seconds=CODE_INTERVAL),
    )
    code = _code_for(challenge)
    sms.send(
        phone,
        f"【{PURPOSE_TEXT.get(purpose, '验证')}】验证码 {code}，"
        f"{CODE_INTERVAL // 60} 分钟内有效。请勿告诉他人。",
    )
    return challenge


def verify_code(challenge_id: int | None, purpose: str, subject: str, code: str) -> None:
    """Accept a code once. Raises CodeFailed for a wrong, expired, reused or foreign code."""
    code = (code or "").strip()
    failure = None
    with write_tx():  # the attempt counter must be committed even when the code is wrong
        challenge = OtpChallenge.get_or_none(OtpChallenge.id == challenge_id)
        if (
            challenge is None
            or challenge.purpose != purpose
            or challenge.subject != subject
            or challenge.used_at is not None
            or challenge.attempts >= MAX_CODE_ATTEMPTS
            or utcnow() > challenge.expires_at
        ):
            failure = "验证码无效或已过期，请重新获取"
        elif not pyotp.utils.strings_equal(code, _code_for(challenge)):
            OtpChallenge.update(attempts=OtpChallenge.attempts + 1).where(
                OtpChallenge.id == challenge.id
            ).execute()
            failure = "验证码不正确"
        else:
            # conditional update: of two concurrent uses of the same code, one wins
            won = (
                OtpChallenge.update(used_at=utcnow())
                .where((OtpChallenge.id == challenge.id) & OtpChallenge.used_at.is_null())
                .execute()
            )
            if not won:
                failure = "验证码无效或已过期，请重新获取"
    if failure:
        raise CodeFailed(failure)


# --- depositors ---------------------------------------------------------------------------


def find_depositor(resident_id: str) -> Depositor | None:
    return Depositor.get_or_none(Depositor.resident_id == normalize_resident_id(resident_id))


def _failed(kind: str, obj, identifier: str, ip: str) -> LoginFailed:
    """Audit a failed login (masked identifier only) and return the exception to raise."""
    audit.record("anonymous", "login.failed", kind, obj.id if obj else "", ip=ip, who=identifier)
    return LoginFailed()


def authenticate_depositor(resident_id: str, password: str, ip: str = "") -> Depositor:
    lockout.check("depositor", resident_id, ip)
    depositor = find_depositor(resident_id)
    ok = check_password(depositor.password_hash if depositor else None, password)
    if not ok or not depositor.active:
        lockout.failed("depositor", resident_id)
        raise _failed("depositor", depositor, mask_resident_id(resident_id), ip)
    lockout.succeeded("depositor", resident_id)
    return depositor


def depositor_for_activation(resident_id: str, name: str) -> Depositor:
    """First login and password reset: ID and name must match the record."""
    depositor = find_depositor(resident_id)
    if depositor is None or not depositor.active or depositor.name != (name or "").strip():
        raise LoginFailed
    return depositor


def set_depositor_password(depositor: Depositor, password: str, confirm: str, purpose: str) -> None:
    validate_new_password(password, confirm)
    with write_tx():
        Depositor.update(password_hash=hash_password(password)).where(
            Depositor.id == depositor.id
        ).execute()
        audit.record(f"depositor:{depositor.id}", f"password.{purpose}", "depositor", depositor.id)


# --- employer operators -------------------------------------------------------------------


def authenticate_operator(
    credit_code: str, resident_id: str, password: str, ip: str = ""
) -> EmployerOperator:
    who = f"{(credit_code or '').strip().upper()}|{resident_id}"
    lockout.check("operator", who, ip)
    operator = (
        EmployerOperator.select(EmployerOperator, Employer)
        .join(Employer)
        .where(
            (Employer.credit_code == (credit_code or "").strip().upper())
            & (EmployerOperator.resident_id == normalize_resident_id(resident_id))
        )
        .first()
    )
    ok = check_password(operator.password_hash if operator else None, password)
    if not ok or not operator.active or operator.employer.status == "注销":
        lockout.failed("operator", who)
        raise _failed("operator", operator, mask_resident_id(resident_id), ip)
    lockout.succeeded("operator", who)
    return operator


# --- staff --------------------------------------------------------------------------------


def authenticate_staff(username: str, password: str, ip: str = "") -> StaffUser:
    lockout.check("staff", username, ip)
    user = StaffUser.get_or_none(StaffUser.username == (username or "").strip())
    ok = check_password(user.password_hash if user else None, password)
    if not ok or not user.active:
        lockout.failed("staff", username)
        raise _failed("staff", user, (username or "").strip()[:40], ip)
    return user


def verify_staff_second_factor(user: StaffUser, code: str) -> None:
    """The TOTP step of a staff login: wrong codes count towards the same lockout, and the
    password is forgotten as a success only once the code is right too."""
    lockout.check("staff", user.username, "")
    try:
        verify_totp(user, code)
    except CodeFailed:
        lockout.failed("staff", user.username)
        raise
    lockout.succeeded("staff", user.username)


def totp_uri(user: StaffUser, issuer: str) -> str:
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.username, issuer_name=issuer)


def verify_totp(user: StaffUser, code: str, now: float | None = None) -> None:
    """Check a staff TOTP code (one step of clock skew) and refuse a replay of any code
    whose time step is not newer than the last accepted one."""
    code = (code or "").strip()
    if not user.totp_secret or not code.isascii() or not code.isdigit() or len(code) != 6:
        raise CodeFailed("动态口令不正确")
    totp = pyotp.TOTP(user.totp_secret)
    now = time.time() if now is None else now
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            with write_tx():
                won = (
                    StaffUser.update(totp_last_step=step)
                    .where((StaffUser.id == user.id) & (StaffUser.totp_last_step < step))
                    .execute()
                )
            if not won:
                raise CodeFailed("该动态口令已使用，请等待下一个口令")
            user.totp_last_step = step
            return
    raise CodeFailed("动态口令不正确")


def start_totp_enrolment(user: StaffUser) -> StaffUser:
    with write_tx():
        user.totp_secret = pyotp.random_base32()
        user.totp_confirmed = False
        user.totp_last_step = 0
        user.save()
    return user


def confirm_totp_enrolment(user: StaffUser, code: str) -> None:
    verify_totp(user, code)
    with write_tx():
        StaffUser.update(totp_confirmed=True).where(StaffUser.id == user.id).execute()
        audit.record(f"staff:{user.username}", "totp.enrolled", "staff", user.id)
    user.totp_confirmed = True
