"""Httpbank against Paygate's contract kit (paygate.testing), with a real bank server, plus
the bank's and the plugin's own behaviours.

Run after ``pip install -e '.[test]'``: ``python -m pytest`` (the bank is started by a fixture).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import paygate_processor_httpbank
import pytest
import requests
from paygate_processor_httpbank import (
    BankUnavailable,
    HttpbankProcessor,
    charge_result,
    verify_signature,
)
from paygate_processor_httpbank import bank as httpbank
from paygate_processor_httpbank.bank import sign
from paygate_processor_httpbank.testing import ACCOUNT, OTHER_ACCOUNT, start_bank

from paygate import (
    CallbackRequest,
    CardDetails,
    ChargeRequest,
    MethodDetails,
    NextAction,
    Outcome,
    PluginError,
    TokenizeRequest,
    declines,
)
from paygate.testing import ProcessorContract

CALLBACK_PATH = "/api/v1/processors/httpbank/callbacks"
PAN = "4111111111111111"
CVV = "123"


def config_for(url: str, account=ACCOUNT) -> dict[str, str]:
    return {"base_url": url, "api_key": account[1], "signing_secret": account[2]}


def card(number: str = PAN, month: int = 12, year: int | None = None, cvv: str = CVV):
    year = datetime.now(UTC).year + 3 if year is None else year
    return MethodDetails(
        method="card",
        card=CardDetails(number, month, year, cvv, "Asha Buyer", "visa", number[-4:]),
    )


def act(action: NextAction, approve: bool) -> requests.Response:
    """The buyer on the bank's page: read it, press a button."""
    page = requests.get(action.url, timeout=5)
    assert page.status_code == 200
    assert 'data-test-id="challenge-approve"' in page.text
    assert 'data-test-id="challenge-deny"' in page.text
    target = urlsplit(action.url)
    secret = re.search(r'name="s" value="([^"]+)"', page.text).group(1)
    decision = "approve" if approve else "deny"
    return requests.post(
        f"{target.scheme}://{target.netloc}{target.path}",
        data={"s": secret, "decision": decision},
        allow_redirects=False,
        timeout=10,
    )


class TestHttpbankHonoursTheProcessorContract(ProcessorContract):
    settle_timeout = 10.0

    @pytest.fixture(autouse=True)
    def _bank(self, bank, callbacks):
        self.bank_url, self.callbacks = bank.url, callbacks

    def make_processor(self) -> HttpbankProcessor:
        return HttpbankProcessor(callback_url=self.callbacks.url(CALLBACK_PATH), timeout=5)

    def make_config(self, processor):
        return config_for(self.bank_url)

    def refused_details(self, processor):
        return card(year=2020)

    def declining_payment(self, processor):
        return self.make_payment(processor, amount=50051)  # insufficient funds

    def complete_action(self, processor, payment, action, approve=True):
        answer = act(action, approve)
        assert answer.status_code == 303
        assert answer.headers["Location"] == self.return_url_template.format(payment_id=payment.id)

    def make_callback(self, processor, payment):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for received in self.callbacks.to(CALLBACK_PATH):
                event = json.loads(received.body)
                if event["data"]["idempotency_key"] == payment.id:
                    headers = {k.lower(): v for k, v in received.headers.items()}
                    return CallbackRequest(body=received.body, headers=headers)
            time.sleep(0.05)
        raise AssertionError(f"no callback for {payment.id}")


contract = TestHttpbankHonoursTheProcessorContract()


@pytest.fixture
def kit(bank, callbacks):
    contract.bank_url, contract.callbacks = bank.url, callbacks
    return contract


def tokenize(processor, config, details, key="pay_tokenize"):
    return processor.tokenize(
        TokenizeRequest(details, "merch_1", 50000, "INR", idempotency_key=key, config=config)
    )


@pytest.mark.parametrize(
    ("details", "code"),
    [
        (card(year=2020), "EXPIRED_CARD"),
        (card(month=13), "EXPIRED_CARD"),
        (card("4000000000000002"), "CARD_DECLINED"),
        (card("4000000000000069"), "EXPIRED_CARD"),
        (card("4000000000000127"), "INCORRECT_CVV"),
        (card(cvv="12"), "INCORRECT_CVV"),
        (card("4111111111111112"), "CARD_DECLINED"),
        (MethodDetails(method="upi", vpa="not a vpa"), "INVALID_VPA"),
    ],
)
def test_tokenize_refusals_carry_the_banks_code(kit, details, code):
    processor = kit.make_processor()
    result = tokenize(processor, config_for(kit.bank_url), details, key=f"pay_{code}_{id(details)}")
    assert result.token is None
    assert result.error_code == code and result.error_description


def test_the_same_idempotency_key_gives_the_same_token_and_the_same_charge(kit):
    processor, config = kit.make_processor(), config_for(kit.bank_url)
    one, two = (tokenize(processor, config, card(), key="pay_same_key") for _ in range(2))
    assert one.token == two.token and one.token.startswith("tok_")
    payment = kit.make_payment(processor, method_token=one.token)
    first, again = (processor.charge(kit.charge_request(processor, payment)) for _ in range(2))
    assert first.reference == again.reference


def test_a_token_is_only_good_for_its_own_account(kit):
    processor = kit.make_processor()
    token = tokenize(processor, config_for(kit.bank_url), card(), key="pay_acct").token
    payment = kit.make_payment(processor, method_token=token)
    request = ChargeRequest(
        payment, payment.id, token=token, config=config_for(kit.bank_url, OTHER_ACCOUNT)
    )
    result = processor.charge(request)
    assert result.outcome == Outcome.FAILED and result.error_code == "PAYMENT_FAILED"


def test_every_card_is_challenged_and_a_denial_fails_with_authentication_failed(kit):
    processor = kit.make_processor()
    payment = kit.tokenized(processor, kit.make_payment(processor, "card"))
    first = processor.charge(kit.charge_request(processor, payment))
    assert first.outcome == Outcome.PENDING and first.next_action.url.startswith(kit.bank_url)
    settled, result = kit.run_charge(processor, payment, approve=False)
    assert (result.outcome, result.error_code) == (Outcome.FAILED, "AUTHENTICATION_FAILED")
    callback = kit.make_callback(processor, settled)
    answer = processor.read_callback(callback, config=config_for(kit.bank_url))
    assert (answer.outcome, answer.error_code) == (Outcome.FAILED, "AUTHENTICATION_FAILED")


def test_a_frictionless_card_and_upi_authorize_without_a_challenge(kit):
    processor = kit.make_processor()
    for details, method in ((card("4000000000000077"), "card"), (None, "upi")):
        payment = kit.make_payment(processor, method)
        if details is not None:
            token = tokenize(processor, config_for(kit.bank_url), details, key=payment.id).token
            payment = replace(payment, method_token=token)
        else:
            payment = kit.tokenized(processor, payment)
        result = processor.charge(kit.charge_request(processor, payment))
        assert result.outcome == Outcome.SUCCESS and result.next_action is None


def test_magic_amounts_and_cards_decline_after_the_challenge(kit):
    processor = kit.make_processor()
    for amount, code in ((50051, "INSUFFICIENT_FUNDS"), (50052, "CARD_DECLINED")):
        _, result = kit.run_charge(processor, kit.make_payment(processor, "card", amount=amount))
        assert (result.outcome, result.error_code) == (Outcome.FAILED, code)
    payment = kit.make_payment(processor, "card")
    token = tokenize(processor, config_for(kit.bank_url), card("4000000000009995"), payment.id)
    payment = replace(payment, method_token=token.token)
    _, result = kit.run_charge(processor, payment)
    assert result.error_code == "INSUFFICIENT_FUNDS"
    upi = kit.make_payment(processor, "upi", vpa="declined@httpbank")
    assert kit.run_charge(processor, upi)[1].error_code == "PAYMENT_FAILED"


def test_partial_capture_then_refunds_within_the_captured_amount(kit):
    processor, config = kit.make_processor(), config_for(kit.bank_url)
    payment = kit.captured_payment(processor, amount=20000)
    too_much = kit.make_refund(payment, 20001)
    result = processor.refund(payment, too_much, config=config)
    assert (result.outcome, result.error_code) == (Outcome.FAILED, "REFUND_FAILED")
    assert processor.refund(payment, kit.make_refund(payment, 15000), config=config).outcome == (
        Outcome.SUCCESS
    )
    rest = processor.refund(payment, kit.make_refund(payment, 5001), config=config)
    assert rest.outcome == Outcome.FAILED  # 15000 + 5001 > 20000 captured


def test_a_refused_capture_and_a_capture_after_release_carry_capture_failed(kit):
    processor, config = kit.make_processor(), config_for(kit.bank_url)
    payment, _ = kit.settled_payment(processor)
    refused = processor.capture(payment, 10053, config=config)  # magic: paise 53
    assert (refused.outcome, refused.error_code) == (Outcome.FAILED, "CAPTURE_FAILED")
    released, _ = kit.settled_payment(processor)
    assert processor.release(released, config=config).outcome == Outcome.SUCCESS
    late = processor.capture(released, released.amount, config=config)
    assert (late.outcome, late.error_code) == (Outcome.FAILED, "CAPTURE_FAILED")
    # a captured charge cannot be released
    captured = kit.captured_payment(processor)
    result = processor.release(captured, config=config)
    assert (result.outcome, result.error_code) == (Outcome.FAILED, "RELEASE_FAILED")


def test_a_capture_whose_answer_was_lost_answers_the_same_when_asked_again(kit):
    processor, config = kit.make_processor(), config_for(kit.bank_url)
    payment, _ = kit.settled_payment(processor)
    first = processor.capture(payment, 30000, config=config)
    again = processor.capture(payment, 30000, config=config)  # the gateway's retry: same key
    assert first.outcome == again.outcome == Outcome.SUCCESS


def test_sync_finds_the_charge_without_a_reference(kit):
    processor = kit.make_processor()
    payment, result = kit.settled_payment(processor)
    lost = replace(payment, processor_reference=None)
    synced = processor.sync(lost, config=config_for(kit.bank_url))
    assert (synced.outcome, synced.reference) == (Outcome.SUCCESS, result.reference)
    never = kit.make_payment(processor)
    assert processor.sync(never, config=config_for(kit.bank_url)).outcome == Outcome.PENDING


def test_signatures_expire_and_name_one_secret():
    body = b'{"id":"evt_1","data":{"object":"charge"}}'
    now = int(time.time())
    header = sign("secret-one", body, now)
    assert verify_signature("secret-one", body, header)
    assert not verify_signature("secret-two", body, header)
    assert not verify_signature("secret-one", body, sign("secret-one", body, now - 301))
    assert not verify_signature("secret-one", body, sign("secret-one", body, now + 301))
    assert not verify_signature("secret-one", body, "v1=" + header.split("v1=")[1])
    assert not verify_signature("secret-one", body, None)


def test_a_callback_signed_for_another_merchant_is_refused(kit):
    processor = kit.make_processor()
    payment, _ = kit.settled_payment(processor)
    genuine = kit.make_callback(processor, payment)
    other = config_for(kit.bank_url, OTHER_ACCOUNT)
    assert processor.read_callback(genuine, config=other) is None
    assert processor.read_callback(genuine, config=config_for(kit.bank_url)).outcome == "success"


def test_an_unreachable_bank_raises_and_never_guesses(kit):
    processor = HttpbankProcessor(timeout=0.5)
    config = {**config_for(kit.bank_url), "base_url": "http://127.0.0.1:9"}
    payment = kit.make_payment(processor, method_token="tok_x")
    with pytest.raises(BankUnavailable):
        tokenize(processor, config, card())
    with pytest.raises(BankUnavailable):
        processor.charge(ChargeRequest(payment, payment.id, token="tok_x", config=config))
    with pytest.raises(BankUnavailable):
        processor.capture(payment, 100, config=config)
    wrong_key = {**config_for(kit.bank_url), "api_key": "hb_key_nobody"}
    with pytest.raises(BankUnavailable, match="401"):
        tokenize(processor, wrong_key, card())


def test_every_code_the_bank_gives_is_in_paygates_decline_catalogue():
    catalogue = {decline.code for decline in declines.CATALOGUE}
    given = {code for code, _ in httpbank.TOKENIZE_REFUSALS.values()}
    given |= {code for code, _ in httpbank.AMOUNT_DECLINES.values()}
    given |= set(re.findall(r'"([A-Z_]+_(?:FAILED|TIMEOUT|DECLINED|EXCEEDED|VPA|CVV|CARD))"',
                            Path(httpbank.__file__).read_text()))  # fmt: skip
    assert given and given <= catalogue, given - catalogue


def test_charge_result_maps_every_bank_status():
    assert charge_result({"id": "ch_1", "status": "authorized"}).outcome == Outcome.SUCCESS
    assert charge_result({"id": "ch_1", "status": "processing"}).outcome == Outcome.PENDING
    failed = charge_result({"status": "failed", "error": {"code": "SOMETHING_NEW"}})
    assert failed.error_code == "PAYMENT_FAILED"  # outside the decline catalogue


def test_settings_are_validated():
    declared = {s.name: s for s in HttpbankProcessor.settings}
    assert set(declared) == {"base_url", "api_key", "signing_secret"}
    assert declared["api_key"].secret and declared["signing_secret"].secret
    assert not declared["base_url"].secret
    assert declared["base_url"].validate("ftp://bank") is not None
    assert declared["base_url"].validate("https://bank.example/api") is None
    assert declared["api_key"].validate("short") is not None
    assert declared["api_key"].validate("hb_key_long_enough") is None


def test_the_installed_entry_point_registers_httpbank_with_its_callback_url(paygate_plugins):
    processor = paygate_plugins.processor("httpbank")
    assert isinstance(processor, HttpbankProcessor)
    api_url = paygate_plugins.settings.api_url if hasattr(paygate_plugins, "settings") else None
    assert processor.callback_url.endswith("/api/v1/processors/httpbank/callbacks")
    if api_url:
        assert processor.callback_url.startswith(api_url.rstrip("/"))
    (row,) = [row for row in paygate_plugins.info() if row.name == "httpbank"]
    assert row.distribution == "paygate-processor-httpbank"
    assert row.version == paygate_processor_httpbank.__version__


def test_admin_accounts_need_the_admin_token(bank):
    url = bank.url + "/admin/accounts"
    assert requests.post(url, json={}, timeout=5).status_code == 401
    made = requests.post(
        url, json={"id": "acct_new"}, headers={"Authorization": "Bearer admin-token-1"}, timeout=5
    )
    assert made.status_code == 201
    account = made.json()
    assert account["api_key"].startswith("hb_key_") and account["signing_secret"]
    token = requests.post(
        bank.url + "/v1/tokens",
        json={"vpa": "asha@okbank"},
        headers={"Authorization": f"Bearer {account['api_key']}"},
        timeout=5,
    )
    assert token.status_code == 200


def test_the_books_survive_a_restart_without_card_data(kit, tmp_path):
    state = tmp_path / "books.json"
    running = start_bank(tmp_path, "--state", str(state))
    try:
        processor, config = kit.make_processor(), config_for(running.url)
        token = tokenize(processor, config, card(), key="pay_books").token
        payment = kit.make_payment(processor, method_token=token)
        first = processor.charge(ChargeRequest(payment, payment.id, token=token, config=config))
    finally:
        running.stop()
    running = start_bank(tmp_path, "--state", str(state))
    try:
        config = config_for(running.url)
        again = processor.sync(
            replace(payment, processor_reference=first.reference),
            config=config,
        )
        assert again.reference == first.reference and again.outcome == Outcome.PENDING
    finally:
        running.stop()
    for text in (state.read_text(), running.log.read_text()):
        assert PAN not in text and "1111 1111" not in text
        assert not re.search(r"(?i)(?<![a-z0-9])(cvc|cvv)(?![a-z0-9])", text)


def test_the_bank_never_logs_card_data(bank):
    text = bank.log.read_text()
    assert "httpbank POST /v1/tokens" in text  # the log is being written
    assert PAN not in text and not re.search(
        r"(?i)(?<![a-z0-9])(cvc|cvv|exp_month)(?![a-z0-9])", text
    )


def test_an_abandoned_challenge_fails_with_authentication_timeout(kit, tmp_path):
    running = start_bank(tmp_path, "--challenge-timeout", "0.3")
    try:
        processor, config = kit.make_processor(), config_for(running.url)
        payment = kit.make_payment(processor, "card")
        token = tokenize(processor, config, card(), key=payment.id).token
        request = ChargeRequest(payment, payment.id, token=token, config=config)
        first = processor.charge(request)
        assert first.next_action is not None
        time.sleep(0.5)
        reference = first.reference
        later = processor.sync(replace(payment, processor_reference=reference), config=config)
        assert (later.outcome, later.error_code) == (Outcome.FAILED, "AUTHENTICATION_TIMEOUT")
        assert requests.get(first.next_action.url, timeout=5).text.count("challenge-approve") == 0
    finally:
        running.stop()


def test_a_refused_connection_is_processor_unreachable_and_a_5xx_is_not(kit):
    from paygate_processor_httpbank import BankUnreachable

    from paygate import ProcessorUnreachable

    processor = HttpbankProcessor(timeout=0.5)
    config = {**config_for(kit.bank_url), "base_url": "http://127.0.0.1:9"}
    payment = kit.make_payment(processor, method_token="tok_x")
    with pytest.raises(ProcessorUnreachable) as raised:
        processor.charge(ChargeRequest(payment, payment.id, token="tok_x", config=config))
    assert isinstance(raised.value, BankUnreachable) and "refused" in raised.value.reason
    wrong_key = {**config_for(kit.bank_url), "api_key": "hb_key_nobody"}
    with pytest.raises(BankUnavailable) as answered:
        tokenize(processor, wrong_key, card())
    assert not isinstance(answered.value, ProcessorUnreachable)  # the bank heard it


def test_the_operator_sets_the_timeout_through_the_plugins_own_configuration():
    """``PAYGATE_PLUGIN_HTTPBANK_TIMEOUT_SECONDS`` reaches the processor as ``context.config``;
    a value out of (0, 60] stops start-up naming the variable; the declared plugin API loads."""
    from paygate.config import Settings
    from paygate.plugins import load_plugins

    def loaded(**env: str):
        return load_plugins(Settings.from_env(TEST_MODE="true", **env))

    assert loaded().processor("httpbank").timeout == 5.0
    assert (
        loaded(PAYGATE_PLUGIN_HTTPBANK_TIMEOUT_SECONDS="12.5").processor("httpbank").timeout == 12.5
    )
    with pytest.raises(PluginError, match="PAYGATE_PLUGIN_HTTPBANK_TIMEOUT_SECONDS must be"):
        loaded(PAYGATE_PLUGIN_HTTPBANK_TIMEOUT_SECONDS="600")
    (row,) = [row for row in loaded().info() if row.name == "httpbank"]
    assert row.requires_api == ">=1.1,<2"
