"""checkout.js on a merchant page served from another origin, in Debian's Chromium, against a
real API, checkout app and worker: the modal, paying in it, callbacks, closing, keyboard and
focus, and the message checks that keep forged or crossed messages out."""

from __future__ import annotations

import time

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.test_checkout_page import SETTLED, contract_test_ids
from tests.fixtures import Gateway, wait_for

MERCHANT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>Chai &amp; Co. | Checkout</title>
<style>
body{margin:0;font:16px/1.5 Georgia,serif;background:#f6f1ea;color:#2b2118}
header{padding:18px 32px;background:#2b2118;color:#f6f1ea;font-size:22px;letter-spacing:.04em}
main{max-width:880px;margin:40px auto;padding:0 20px;display:flex;gap:32px;flex-wrap:wrap}
.art{flex:1 1 280px;min-height:260px;border-radius:14px;
  background:linear-gradient(135deg,#c8793a,#8a4b22)}
.info{flex:1 1 300px}.price{font-size:28px;font-weight:bold}
button{padding:12px 22px;font:inherit;color:#fff;background:#8a4b22;border:0;border-radius:8px}
</style>
<script src="__CHECKOUT__/checkout.js"></script></head>
<body data-order="__ORDER__">
<header>Chai &amp; Co.</header>
<main><div class="art"></div><div class="info"><h1>Masala Chai Gift Box</h1>
<p>Twelve hand-blended teas from Assam and Darjeeling.</p><p class="price">&#8377;500.00</p>
<button id="buy" type="button">Buy now</button></div></main>
<script>
window.events = [];
function record(kind) {
  return function (value) { window.events.push({kind: kind, value: value === undefined ? null : value}); };
}
window.makeCheckout = function (orderId, tag, key) {
  tag = tag || "";
  return new PaymentGateway({key: key || "key_test_abc123", orderId: orderId,
    onSuccess: record(tag + "success"), onFailure: record(tag + "failure"),
    onClose: record(tag + "close")});
};
document.getElementById("buy").addEventListener("click", function () {
  window.checkout = window.makeCheckout(document.body.getAttribute("data-order"));
  window.checkout.open();
});
</script></body></html>"""


def merchant_site(httpserver, checkout_url: str, order_id: str) -> str:
    """Serve the merchant's page from pytest-httpserver: ``localhost:<port>``, another origin
    (and site) than the checkout's ``127.0.0.1:<port>``."""
    html = MERCHANT_PAGE.replace("__CHECKOUT__", checkout_url).replace("__ORDER__", order_id)
    httpserver.expect_request("/shop").respond_with_data(html, content_type="text/html")
    url = httpserver.url_for("/shop")
    assert url.startswith("http://localhost:")
    return url


def at_rest(page, instance: str = "window.checkout") -> None:
    """Wait until a person could use the dialog: its opening animation (0.22 s) has ended, the
    checkout page in the frame has started (it told the SDK ``checkout_ready``) and has painted.
    The frame is another site, drawn by another renderer process: Chromium routes a click by
    where that process last painted, so a click sent just after the frame (re)loaded, or while
    the dialog still moved, lands on the <iframe> element of this page instead (seen in CI)."""
    ready = f"""() => !!({instance} && {instance}.ready) &&
        document.getAnimations().every(a => a.playState === 'finished')"""
    # Polled from here: a strict merchant CSP forbids wait_for_function's evaluation.
    wait_for(lambda: page.evaluate(ready), message=f"{instance} not ready after 10 s")
    frame = page.locator("[data-test-id=payment-iframe]").element_handle().content_frame()
    frame.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def press(button) -> None:
    """Activate a button inside the checkout frame from the keyboard (focus, then Enter), as a
    keyboard user does. Not a mouse click: Chromium routes a click into a cross-site frame by
    where that frame's renderer last painted, and just after the frame (re)loads it sometimes
    delivers the click to the <iframe> element of the merchant page instead (seen in CI, with
    the dialog at rest and the page ready); keyboard input follows focus. The hosted page tests
    click with the mouse."""
    button.press("Enter")


def open_modal(page, httpserver, gateway, order_id: str):
    page.goto(merchant_site(httpserver, gateway.checkout_url, order_id))
    page.locator("#buy").click()
    expect(page.get_by_test_id("payment-modal")).to_be_visible()
    frame = page.frame_locator("[data-test-id=payment-iframe]")
    expect(frame.get_by_test_id("checkout-container")).to_be_visible()
    at_rest(page)
    return frame


def events(page, kind: str | None = None) -> list:
    found = page.evaluate("window.events")
    return [e for e in found if kind is None or e["kind"] == kind]


def wait_event(page, kind: str, timeout: int = SETTLED) -> dict:
    page.wait_for_function(
        "kind => window.events.some(e => e.kind === kind)", arg=kind, timeout=timeout
    )
    return events(page, kind)[0]["value"]


def test_modal_pays_and_reports_success_to_the_merchant_page(
    page, httpserver, checkout_gateway, new_order
):
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    order = new_order(50000)
    frame = open_modal(page, httpserver, checkout_gateway, order["id"])

    modal = page.locator("#payment-gateway-modal")
    content = modal.locator(":scope > .modal-overlay > .modal-content")
    iframe = content.locator(":scope > iframe")
    close = content.locator(":scope > button.close-button")
    _, sdk_ids = contract_test_ids()
    assert sdk_ids == {"payment-modal", "payment-iframe", "close-modal-button"}
    expect(modal).to_have_attribute("data-test-id", "payment-modal")
    expect(iframe).to_have_attribute("data-test-id", "payment-iframe")
    expect(close).to_have_attribute("data-test-id", "close-modal-button")
    expect(content).to_have_attribute("role", "dialog")
    expect(content).to_have_attribute("aria-modal", "true")
    expect(iframe).to_have_attribute("title", "Paygate secure checkout")
    expect(close).to_have_accessible_name("Close checkout")
    assert iframe.get_attribute("src") == (
        f"{checkout_gateway.checkout_url}/checkout?order_id={order['id']}&embedded=true"
    )
    expect(frame.get_by_test_id("order-amount")).to_have_text("₹500.00")

    press(frame.get_by_test_id("method-upi"))
    frame.get_by_test_id("vpa-input").fill("success@test")
    screenshot(page, "sdk-modal-desktop")
    press(frame.get_by_test_id("pay-button"))
    expect(frame.get_by_test_id("processing-state")).to_be_visible()

    result = wait_event(page, "success")
    expect(page.get_by_test_id("payment-modal")).to_have_count(0)
    assert [e["kind"] for e in events(page)] == ["success", "close"]
    assert result["orderId"] == order["id"]
    assert result["amount"] == 50000 and result["status"] == "success"
    payment = checkout_gateway.api_call("GET", f"/api/v1/payments/{result['paymentId']}").json()
    assert (payment["order_id"], payment["status"]) == (order["id"], "success")
    assert errors == []


def test_close_button_calls_on_close_and_gives_the_page_back(
    page, httpserver, checkout_gateway, new_order
):
    order = new_order(50000)
    open_modal(page, httpserver, checkout_gateway, order["id"])
    expect(page.locator("main")).to_have_attribute("inert", "")  # the page behind is inert
    page.get_by_test_id("close-modal-button").click()

    expect(page.get_by_test_id("payment-modal")).to_have_count(0)
    assert [e["kind"] for e in events(page)] == ["close"]
    expect(page.locator("#buy")).to_be_focused()  # focus restored to the opener
    expect(page.locator("main")).not_to_have_attribute("inert", "")
    assert page.evaluate("document.documentElement.style.overflow") == ""
    assert page.evaluate("window.checkout.isOpen()") is False


def test_escape_closes_from_the_page_and_from_inside_the_checkout(
    page, httpserver, checkout_gateway, new_order
):
    order = new_order(50000)
    open_modal(page, httpserver, checkout_gateway, order["id"])
    page.evaluate("document.querySelector('.modal-content').focus()")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("payment-modal")).to_have_count(0)

    page.locator("#buy").click()
    frame = page.frame_locator("[data-test-id=payment-iframe]")
    at_rest(page)
    frame.get_by_test_id("vpa-input").focus()  # focus is now inside the cross-origin frame
    expect(frame.get_by_test_id("vpa-input")).to_be_focused()
    # Key down only while the frame exists: its keydown closes the modal, and a key-up sent to
    # a frame that is being removed can hang Playwright on a busy machine.
    page.keyboard.down("Escape")
    expect(page.get_by_test_id("payment-modal")).to_have_count(0)
    page.keyboard.up("Escape")
    assert [e["kind"] for e in events(page)] == ["close", "close"]
    expect(page.locator("#buy")).to_be_focused()


def test_focus_stays_in_the_dialog(page, httpserver, checkout_gateway, new_order):
    order = new_order(50000)
    frame = open_modal(page, httpserver, checkout_gateway, order["id"])
    expect(frame.get_by_test_id("method-upi")).to_be_visible()
    inside = """() => {
        const modal = document.getElementById('payment-gateway-modal');
        const el = document.activeElement;
        return !!modal && modal.contains(el) && (el.tagName === 'IFRAME' || el.tagName === 'BUTTON');
    }"""

    def settles_inside() -> None:
        # The checkout frame is another site (another renderer process): focus crossing its
        # edge lands a moment after the key press returns, so wait (briefly) for where it lands.
        try:
            page.wait_for_function(inside, timeout=2_000)
        except PlaywrightTimeoutError:
            raise AssertionError(page.evaluate("document.activeElement.outerHTML")) from None

    places = set()
    for _ in range(12):
        page.keyboard.press("Tab")
        settles_inside()
        places.add(page.evaluate("document.activeElement.tagName"))
    for _ in range(6):
        page.keyboard.press("Shift+Tab")
        settles_inside()
    assert places == {"IFRAME", "BUTTON"}  # it cycles through the form and the close button


def test_forged_and_crossed_messages_are_ignored(page, httpserver, checkout_gateway, new_order):
    order = new_order(50000)
    open_modal(page, httpserver, checkout_gateway, order["id"])
    channel = page.evaluate("window.checkout.channel")
    forged = {
        "type": "payment_success",
        "channel": channel,
        "data": {"paymentId": "pay_forged0000000000", "orderId": order["id"]},
    }
    # 1. From the merchant's own origin (any script on the page, or another frame of it).
    page.evaluate("m => window.postMessage(m, '*')", forged)
    # 2. From the real checkout frame and origin, but another instance's channel.
    checkout_frame = page.frame(url=lambda url: "embedded=true" in url)
    checkout_frame.evaluate("m => parent.postMessage(m, '*')", {**forged, "channel": "pgc_other"})
    # 3. From the checkout's origin and the right channel, but not our frame.
    page.evaluate(
        """url => { const f = document.createElement('iframe'); f.id = 'other';
                    f.src = url; document.body.appendChild(f); }""",
        f"{checkout_gateway.checkout_url}/checkout?order_id=unknown",
    )
    expect(page.frame_locator("#other").get_by_test_id("notice-title")).to_be_visible()
    other = page.frame(url=lambda url: "order_id=unknown" in url)
    other.evaluate("m => parent.postMessage(m, '*')", forged)

    time.sleep(0.5)  # let any (wrongly) accepted message run its callback
    assert events(page) == []
    expect(page.get_by_test_id("payment-modal")).to_be_visible()

    # The same message from our frame on our channel is honoured: the checks are what stopped
    # the three above.
    checkout_frame.evaluate("m => parent.postMessage(m, '*')", forged)
    assert wait_event(page, "success")["paymentId"] == "pay_forged0000000000"


def test_two_instances_never_cross_talk(page, httpserver, checkout_gateway, new_order):
    first, second = new_order(50000), new_order(70000)
    page.goto(merchant_site(httpserver, checkout_gateway.checkout_url, first["id"]))
    page.evaluate(
        """([a, b]) => { window.a = makeCheckout(a, 'a:'); window.b = makeCheckout(b, 'b:');
                         window.a.open(); window.b.open(); }""",
        [first["id"], second["id"]],
    )
    assert page.evaluate("window.a.channel !== window.b.channel")
    expect(page.get_by_test_id("payment-modal")).to_have_count(1)  # b replaced a
    frame = page.frame_locator("[data-test-id=payment-iframe]")
    expect(frame.get_by_test_id("order-amount")).to_have_text("₹700.00")
    at_rest(page, "window.b")
    frame.get_by_test_id("vpa-input").fill("success@test")
    press(frame.get_by_test_id("pay-button"))
    result = wait_event(page, "b:success")
    assert result["orderId"] == second["id"]
    assert [e["kind"] for e in events(page)] == ["a:close", "b:success", "b:close"]


def test_failed_payment_calls_on_failure_and_keeps_the_modal_open(
    page, httpserver, checkout_gateway, new_order
):
    order = new_order(50000)
    frame = open_modal(page, httpserver, checkout_gateway, order["id"])
    press(frame.get_by_test_id("method-card"))
    frame.get_by_test_id("card-number-input").fill("4000000000000002")
    frame.get_by_test_id("expiry-input").fill("12/30")
    frame.get_by_test_id("cvv-input").fill("123")
    press(frame.get_by_test_id("pay-button"))

    failure = wait_event(page, "failure")
    assert failure["orderId"] == order["id"] and failure["status"] == "failed"
    assert failure["paymentId"].startswith("pay_")
    assert failure["error"] == {
        "code": "PAYMENT_FAILED",
        "description": "Payment processing failed",
    }
    expect(page.get_by_test_id("payment-modal")).to_be_visible()
    expect(frame.get_by_test_id("error-state")).to_be_visible()

    press(frame.get_by_test_id("retry-button"))
    press(frame.get_by_test_id("method-upi"))
    frame.get_by_test_id("vpa-input").fill("success@test")
    press(frame.get_by_test_id("pay-button"))
    assert wait_event(page, "success")["paymentId"] != failure["paymentId"]
    expect(page.get_by_test_id("payment-modal")).to_have_count(0)


def test_order_errors_reach_on_failure(page, httpserver, checkout_gateway, new_order):
    order = new_order(50000)
    page.goto(merchant_site(httpserver, checkout_gateway.checkout_url, order["id"]))
    cases = [
        ("order_doesNotExist00", None, "NOT_FOUND_ERROR", "Order not found"),
        (order["id"], "key_test_not_theirs", "AUTHENTICATION_ERROR", "This payment link"),
    ]
    for order_id, key, code, title in cases:
        page.evaluate(
            "([id, key]) => { window.events = []; makeCheckout(id, '', key).open(); }",
            [order_id, key],
        )
        failure = wait_event(page, "failure")
        assert failure["orderId"] == order_id
        assert failure["error"]["code"] == code
        frame = page.frame_locator("[data-test-id=payment-iframe]")
        expect(frame.get_by_test_id("notice-title")).to_contain_text(title)
        page.get_by_test_id("close-modal-button").click()


def test_checkout_that_cannot_load_reaches_on_failure(
    page, httpserver, checkout_gateway, new_order
):
    order = new_order(50000)
    page.route("**/checkout?order_id=*", lambda route: route.abort("connectionrefused"))
    page.goto(merchant_site(httpserver, checkout_gateway.checkout_url, order["id"]))
    page.locator("#buy").click()
    failure = wait_event(page, "failure")
    assert failure == {
        "orderId": order["id"],
        "error": {
            "code": "CHECKOUT_UNAVAILABLE",
            "description": "The checkout page could not be loaded",
        },
    }
    expect(page.get_by_role("alert")).to_contain_text("Checkout could not be loaded")
    page.get_by_test_id("close-modal-button").click()
    expect(page.get_by_test_id("payment-modal")).to_have_count(0)


def test_key_and_order_id_are_required(page, httpserver, checkout_gateway):
    page.goto(merchant_site(httpserver, checkout_gateway.checkout_url, "unused"))
    messages = page.evaluate(
        """() => [{orderId: 'order_x'}, {key: 'key_test_abc123'}, {key: '', orderId: 'x'},
                  undefined].map(o => { try { new PaymentGateway(o); return 'no error'; }
                                        catch (e) { return e.message; } })"""
    )
    assert messages == [
        "PaymentGateway: options.key (your API key) is required",
        "PaymentGateway: options.orderId is required",
        "PaymentGateway: options.key (your API key) is required",
        "PaymentGateway: options.key (your API key) is required",
    ]


def test_modal_fills_a_phone_screen(phone_page, httpserver, checkout_gateway, new_order):
    page = phone_page
    order = new_order(50000)
    frame = open_modal(page, httpserver, checkout_gateway, order["id"])  # and at rest
    box = page.locator(".modal-content").bounding_box()
    assert (box["x"], box["width"]) == (0, 360)
    frame.get_by_test_id("vpa-input").fill("success@test")
    assert frame.locator("html").evaluate("el => el.scrollWidth") <= 360
    screenshot(page, "sdk-modal-phone")


STRICT_SHOP_SCRIPT = """
window.events = []; window.violations = [];
document.addEventListener('securitypolicyviolation', e => window.violations.push(e.violatedDirective));
document.getElementById('buy').addEventListener('click', () => {
  window.checkout = new PaymentGateway({key: 'key_test_abc123', orderId: document.body.dataset.order,
    onSuccess: r => window.events.push({kind: 'success', value: r}),
    onFailure: f => window.events.push({kind: 'failure', value: f}),
    onClose: () => window.events.push({kind: 'close', value: null})});
  window.checkout.open();
});
"""


def test_modal_works_under_a_strict_merchant_csp(page, httpserver, checkout_gateway, new_order):
    """No inline styles or scripts allowed on the merchant page: the SDK's styles still apply
    (a constructed stylesheet) and nothing is blocked."""
    order = new_order(50000)
    checkout = checkout_gateway.checkout_url
    html = (
        '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'
        f'<script src="{checkout}/checkout.js"></script></head>'
        f'<body data-order="{order["id"]}"><main><button id="buy">Buy</button></main>'
        '<script src="/shop.js"></script></body></html>'
    )
    csp = (
        f"default-src 'self'; script-src 'self' {checkout}; frame-src {checkout}; "
        "style-src 'self'; img-src 'self' data:"
    )
    httpserver.expect_request("/strict").respond_with_data(
        html, content_type="text/html", headers={"Content-Security-Policy": csp}
    )
    httpserver.expect_request("/shop.js").respond_with_data(
        STRICT_SHOP_SCRIPT, content_type="text/javascript"
    )
    page.goto(httpserver.url_for("/strict"))
    page.locator("#buy").click()
    frame = page.frame_locator("[data-test-id=payment-iframe]")
    frame.get_by_test_id("vpa-input").fill("success@test")
    at_rest(page)
    content = page.locator(".modal-content")
    modal_position = "el => getComputedStyle(el.closest('#payment-gateway-modal')).position"
    assert content.evaluate(modal_position) == "fixed"
    assert content.evaluate("el => getComputedStyle(el).borderRadius") == "16px"
    assert content.bounding_box()["width"] == 440
    press(frame.get_by_test_id("pay-button"))
    assert wait_event(page, "success")["orderId"] == order["id"]
    assert page.evaluate("window.violations") == []


def test_frame_ancestors_list_decides_which_sites_may_embed(
    page, httpserver, checkout_gateway, new_order, tmp_path
):
    """With PAYGATE_FRAME_ANCESTORS naming another site, the browser refuses to frame the
    checkout on this merchant page, and the merchant hears about it in onFailure."""
    strict = Gateway(
        env={**checkout_gateway.env, "PAYGATE_FRAME_ANCESTORS": "https://shop.example.com"},
        tmp=str(tmp_path),
    )
    try:
        url = strict.start_web("checkout")
        order = new_order(50000)
        page.goto(merchant_site(httpserver, url, order["id"]))
        page.locator("#buy").click()
        assert wait_event(page, "failure")["error"]["code"] == "CHECKOUT_UNAVAILABLE"
    finally:
        strict.stop_all()
