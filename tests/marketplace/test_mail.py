"""The mailers: the recording one (tests and demo) and SMTP, against a real local SMTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from marketplace.mail import OutgoingEmail, RecordingMailer, SmtpMailer, render
from marketplace.mail_sink import MailSink
from marketplace.validation import ValidationError

WELCOME = OutgoingEmail(
    email_id="e1", to="ann@example.com", subject="Verify your e-mail address", body="Hi ann,\n\nhttp://x/y\n"
)


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    with MailSink() as sink:
        yield sink


# The recording mailer.


def test_recording_mailer_keeps_what_it_sends_in_order() -> None:
    mailer = RecordingMailer()
    second = OutgoingEmail(email_id="e2", to="bob@example.com", subject="Hello", body="Hi bob")
    mailer.send(WELCOME)
    mailer.send(second)
    assert mailer.sent == [WELCOME, second]
    assert mailer.sent_to("BOB@example.com") == [second]


def test_recording_mailer_echoes_each_email_with_recipient_and_subject() -> None:
    printed: list[str] = []
    RecordingMailer(echo=printed.append).send(WELCOME)
    assert printed == [
        "--- e-mail to ann@example.com: Verify your e-mail address ---\nHi ann,\n\nhttp://x/y\n"
    ]
    assert printed[0] == render(WELCOME)


def test_recording_mailer_waits_for_emails_sent_from_another_thread() -> None:
    mailer = RecordingMailer()
    sender = threading.Thread(target=mailer.send, args=(WELCOME,))
    sender.start()
    assert mailer.wait_for(1, timeout=5) == [WELCOME]
    sender.join()


def test_recording_mailer_gives_up_waiting_after_the_timeout() -> None:
    with pytest.raises(TimeoutError):
        RecordingMailer().wait_for(1, timeout=0.01)


def test_recording_mailer_keeps_every_email_sent_concurrently() -> None:
    mailer = RecordingMailer()
    emails = [
        OutgoingEmail(email_id=f"e{i}", to="ann@example.com", subject="s", body="b") for i in range(200)
    ]
    threads = [threading.Thread(target=mailer.send, args=(e,)) for e in emails]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(e.email_id for e in mailer.sent) == sorted(e.email_id for e in emails)


def test_an_email_without_a_recipient_address_is_invalid() -> None:
    with pytest.raises(ValidationError) as refused:
        OutgoingEmail(email_id="e1", to="", subject="s", body="b")
    assert refused.value.field == "to"


# SMTP.


def test_smtp_mailer_delivers_recipient_subject_body_and_message_id(mail_sink: MailSink) -> None:
    mailer = SmtpMailer(mail_sink.host, mail_sink.port, "Marketplace <no-reply@market.example>", timeout=5)
    mailer.send(WELCOME)
    [received] = mail_sink.received
    assert received.mail_from == "no-reply@market.example"
    assert received.rcpt_to == ("ann@example.com",)
    message = received.message()
    assert message["To"] == "ann@example.com"
    assert message["From"] == "Marketplace <no-reply@market.example>"
    assert message["Subject"] == "Verify your e-mail address"
    assert message["Message-ID"] == "<e1@market.example>"
    assert message.get_content() == "Hi ann,\n\nhttp://x/y\n"


def test_smtp_mailer_sends_non_ascii_subjects_and_bodies(mail_sink: MailSink) -> None:
    mailer = SmtpMailer(mail_sink.host, mail_sink.port, "no-reply@market.example", timeout=5)
    café = OutgoingEmail(email_id="e2", to="ann@example.com", subject="Café logo €12", body="Crème brûlée\n")
    mailer.send(café)
    message = mail_sink.received[0].message()
    assert message["Subject"] == "Café logo €12"
    assert message.get_content() == "Crème brûlée\n"


def test_smtp_mailer_keeps_lines_starting_with_a_dot(mail_sink: MailSink) -> None:
    mailer = SmtpMailer(mail_sink.host, mail_sink.port, "no-reply@market.example", timeout=5)
    mailer.send(OutgoingEmail(email_id="e3", to="ann@example.com", subject="dots", body="a\n.\n.b\n"))
    assert mail_sink.received[0].message().get_content() == "a\n.\n.b\n"


def test_the_same_email_sent_twice_has_the_same_message_id(mail_sink: MailSink) -> None:
    mailer = SmtpMailer(mail_sink.host, mail_sink.port, "no-reply@market.example", timeout=5)
    mailer.send(WELCOME)
    mailer.send(WELCOME)
    first, second = (r.message()["Message-ID"] for r in mail_sink.received)
    assert first == second == "<e1@market.example>"


def test_smtp_mailer_fails_loudly_when_no_server_listens() -> None:
    with MailSink() as sink:
        host, port = sink.host, sink.port
    with pytest.raises(OSError):
        SmtpMailer(host, port, "no-reply@market.example", timeout=2).send(WELCOME)


def test_smtp_login_without_starttls_is_refused() -> None:
    with pytest.raises(ValueError, match="starttls"):
        SmtpMailer("smtp.example", 25, "no-reply@market.example", username="u", password="p")


def test_smtp_mailer_repr_hides_the_password() -> None:
    mailer = SmtpMailer("smtp.example", 587, "a@b.example", username="u", password="hunter22", starttls=True)
    assert "hunter22" not in repr(mailer)


# The mail sink.


def test_the_mail_sink_waits_for_a_message_sent_from_elsewhere(mail_sink: MailSink) -> None:
    mailer = SmtpMailer(mail_sink.host, mail_sink.port, "no-reply@market.example", timeout=5)
    sender = threading.Thread(target=mailer.send, args=(WELCOME,))
    sender.start()
    [received] = mail_sink.wait_for(lambda r: "ann@example.com" in r.rcpt_to, timeout=5)
    sender.join()
    assert received.body() == "Hi ann,\n\nhttp://x/y\n"


def test_the_mail_sink_gives_up_waiting_after_the_timeout(mail_sink: MailSink) -> None:
    with pytest.raises(TimeoutError):
        mail_sink.wait_for(lambda _received: True, timeout=0.01)
