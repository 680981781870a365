"""WCAG 2.2 AA on every page (issue 21): axe-core in Debian's Chromium over every checkout state,
the SDK's modal and its frame, and every dashboard page, at desktop (1280x900) and phone
(360x740) sizes, against one real gateway (API, worker, checkout and dashboard processes).

Every test visits its pages once per size and runs axe once per page or state; it collects what
axe finds (and the contrast it measures on pixels where axe cannot: tests/browser/axe.py) and
fails at the end with all of it. The keyboard tests walk every tab stop of the checkout and of
every dashboard page: the order is the document's, each stop shows a visible change when
focused (screenshots differ), and Enter and Space act.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from paygate.testing.receiver import Receiver
from tests.browser.axe import Findings, check
from tests.browser.conftest import PHONE
from tests.browser.test_sdk import merchant_site
from tests.contrast import UI, contrast, parse_colour
from tests.factories import create_order, create_payment

pytestmark = pytest.mark.browser

SIZES = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": PHONE, "is_mobile": True, "has_touch": True},
}
CARD_3DS = "4000 0000 0000 3220"
POLL = "**/api/v1/payments/*/public"  # the page's status polls (not the payment's creation)

# The focusable elements a Tab can reach, in document order, each tagged with its index.
TAB_STOPS = """() => {
  const all = document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]');
  const stops = [...all].filter(el => el.tabIndex >= 0 && !el.disabled
    && !el.closest('[inert]') && el.checkVisibility({visibilityProperty: true}));
  return stops.map((el, i) => {
    el.dataset.a11yStop = String(i);
    const box = el.getBoundingClientRect();
    return {
      label: (el.dataset.testId || el.getAttribute('aria-label') || el.textContent || el.name
        || el.tagName).trim().replace(/\\s+/g, ' ').slice(0, 40),
      box: {x: box.x + scrollX, y: box.y + scrollY, width: box.width, height: box.height},
    };
  });
}"""
FOCUSED = "() => document.activeElement ? document.activeElement.dataset.a11yStop ?? null : null"
FOCUSED_BOX = """() => {
  const box = document.activeElement.getBoundingClientRect();
  return {x: box.x + scrollX, y: box.y + scrollY, width: box.width, height: box.height};
}"""
MULTI_PART = "() => ['date', 'time', 'datetime-local', 'month', 'week'].includes(document.activeElement.type)"
# Focus a stand-in at the very start of the body, so the next Tab goes to the page's first stop
# (after a blur, Chromium would go on from where focus was).
FROM_THE_TOP = """() => {
  const start = document.createElement('span');
  start.tabIndex = -1;
  start.id = 'a11y-start';
  document.body.prepend(start);
  start.focus();
}"""


@pytest.fixture(scope="module")
def site(checkout_gateway):
    """The checkout gateway plus the dashboard, a webhook receiver, and one paid payment with
    its webhook delivery (so the payment and delivery pages have something to show)."""
    gateway = checkout_gateway
    gateway.dashboard_url = gateway.start_web("dashboard")
    with Receiver() as receiver:
        answer = gateway.api_call(
            "POST", "/api/v1/webhooks/config", json={"webhook_url": receiver.url("/hooks")}
        )
        assert answer.ok, answer.text
        payment = create_payment(gateway, method={"method": "upi", "vpa": "success@test"})
        receiver.wait_for("/hooks", 1)
        gateway.payment_id = payment["id"]
        yield gateway


@pytest.fixture(scope="module", params=list(SIZES))
def browsing(browser, request):
    """One browser context per size for the whole module; its page is reused by each test."""
    context = browser.new_context(**SIZES[request.param])
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield request.param, page
    context.close()


def open_checkout(page, site, order_id: str) -> None:
    page.goto(f"{site.checkout_url}/checkout?order_id={order_id}")
    expect(page.locator("[data-test-id=upi-form], [data-test-id=card-form]")).to_be_visible()


def test_every_checkout_state_passes_axe(site, browsing):
    size, page = browsing
    findings = Findings()
    order = create_order(site)
    open_checkout(page, site, order["id"])
    check(page, f"checkout, UPI form [{size}]", findings)

    page.get_by_test_id("method-card").click()
    expect(page.get_by_test_id("card-form")).to_be_visible()
    check(page, f"checkout, card form [{size}]", findings)

    page.get_by_test_id("pay-button").click()  # nothing filled in: every field in error
    expect(page.locator("#card-number[aria-invalid=true]")).to_be_visible()
    check(page, f"checkout, validation errors [{size}]", findings)

    page.get_by_test_id("card-number-input").fill(CARD_3DS)
    page.get_by_test_id("expiry-input").fill("12/30")
    page.get_by_test_id("cvv-input").fill("123")
    page.get_by_test_id("cardholder-name-input").fill("Asha Rao")
    held = []  # the page's polls wait (unchanged) until axe is done with the processing state
    page.route(POLL, lambda route: held.append(route))
    page.get_by_test_id("pay-button").click()
    expect(page.get_by_test_id("processing-state")).to_be_visible()
    check(page, f"checkout, processing [{size}]", findings)
    for route in held:
        route.continue_()
    page.unroute(POLL)

    page.wait_for_url("**/checkout/challenge/**")
    expect(page.get_by_test_id("challenge-page")).to_be_visible()
    check(page, f"3-D Secure challenge page [{size}]", findings)

    page.get_by_test_id("challenge-approve").click()
    expect(page.get_by_test_id("success-state")).to_be_visible()
    check(page, f"checkout, success [{size}]", findings)

    page.goto(f"{site.checkout_url}/checkout?order_id={order['id']}")
    expect(page.get_by_test_id("notice-title")).to_have_text("This order is already paid")
    check(page, f"checkout, already paid [{size}]", findings)

    page.goto(f"{site.checkout_url}/checkout?order_id=order_NoSuchOrder0000")
    expect(page.get_by_test_id("notice-title")).to_have_text("Order not found")
    check(page, f"checkout, not found [{size}]", findings)

    open_checkout(page, site, create_order(site)["id"])
    page.get_by_test_id("method-upi").click()
    page.get_by_test_id("vpa-input").fill("failure@test")
    page.get_by_test_id("pay-button").click()
    expect(page.get_by_test_id("error-state")).to_be_visible()
    check(page, f"checkout, payment failed [{size}]", findings)

    findings.assert_none()


def test_the_sdk_modal_and_its_frame_pass_axe(site, browsing, httpserver):
    size, page = browsing
    findings = Findings()
    order = create_order(site)
    page.goto(merchant_site(httpserver, site.checkout_url, order["id"]))
    page.locator("#buy").click()
    modal = page.get_by_test_id("payment-modal")
    expect(modal).to_be_visible()
    frame = page.get_by_test_id("payment-iframe").element_handle().content_frame()
    expect(frame.get_by_test_id("upi-form")).to_be_visible()
    check(page, f"merchant page with the SDK's modal open [{size}]", findings)
    check(frame, f"the SDK's checkout frame [{size}]", findings)
    findings.assert_none()


def dashboard_pages(page, site) -> list[tuple[str, str]]:
    base = site.dashboard_url
    page.goto(base + "/dashboard/webhooks")
    delivery = page.get_by_test_id("webhook-event").first.get_attribute("href")
    return [
        ("home", "/dashboard"),
        ("transactions", "/dashboard/transactions"),
        ("payment detail", f"/dashboard/transactions/{site.payment_id}"),
        ("webhooks", "/dashboard/webhooks"),
        ("delivery detail", delivery),
        ("processor", "/dashboard/processor"),
        ("docs", "/dashboard/docs"),
        ("account", "/dashboard/account"),
        ("not found", "/dashboard/transactions/pay_NoSuchPayment000"),
        ("unknown page", "/dashboard/no-such-page"),
    ]


def sign_in(page, site) -> None:
    page.goto(site.dashboard_url + "/login")
    page.get_by_test_id("email-input").fill("test@example.com")
    page.get_by_test_id("password-input").fill("any password")
    page.get_by_test_id("login-button").click()
    page.wait_for_url(site.dashboard_url + "/dashboard")


def test_every_dashboard_page_passes_axe(site, browsing):
    size, page = browsing
    findings = Findings()
    page.context.clear_cookies()
    page.goto(site.dashboard_url + "/login")
    check(page, f"dashboard sign-in [{size}]", findings)
    sign_in(page, site)
    for name, path in dashboard_pages(page, site):
        page.goto(site.dashboard_url + path)
        page.wait_for_load_state()
        check(page, f"dashboard {name} [{size}]", findings)
    findings.assert_none()


# -- keyboard only -------------------------------------------------------------------------


def clip_of(box: dict, margin: int = 8) -> dict:
    """The element's box with room for an outline around it, in page coordinates."""
    x, y = max(box["x"] - margin, 0), max(box["y"] - margin, 0)
    return {
        "x": x,
        "y": y,
        "width": box["width"] + 2 * margin,
        "height": box["height"] + 2 * margin,
    }


def walk_tab_stops(page) -> list[str]:
    """Press Tab through every stop of the page; assert focus follows the document order and
    is visible on each: the stop, where Tab brought it, looks different focused than right
    after a blur (Chromium goes on from a blurred element with the next Tab). Returns the
    labels."""
    stops = page.evaluate(TAB_STOPS)
    assert stops, "no focusable element"
    page.evaluate(FROM_THE_TOP)
    invisible = []
    for index, stop in enumerate(stops):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        for _ in range(3):  # a date field takes a Tab for each of its parts (day, month, year)
            if focused != str(index - 1) or not page.evaluate(MULTI_PART):
                break
            page.keyboard.press("Tab")
            focused = page.evaluate(FOCUSED)
        assert focused == str(index), (
            f"Tab {index + 1} focused stop {focused}, expected {index} ({stop['label']}); "
            f"the order: {[s['label'] for s in stops]}"
        )
        # Where the stop is now: focus scrolls it into view (a phone's sideways navigation).
        clip = clip_of(page.evaluate(FOCUSED_BOX))
        shown = page.screenshot(clip=clip, full_page=True)
        page.evaluate("() => document.activeElement.blur()")
        if page.screenshot(clip=clip, full_page=True) == shown:
            invisible.append(stop["label"])
    page.evaluate("() => document.getElementById('a11y-start').remove()")
    assert not invisible, f"no visible focus indicator on: {invisible}"
    return [s["label"] for s in stops]


@pytest.mark.parametrize("browsing", ["desktop"], indirect=True)
def test_the_selected_payment_method_shows_a_visible_focus_ring(site, browsing):
    _, page = browsing
    open_checkout(page, site, create_order(site)["id"])
    method = page.get_by_test_id("method-upi")
    expect(method).to_have_class("method is-active")
    box = method.bounding_box()
    clip = {k: box[k] for k in ("x", "y", "width", "height")}
    clip = clip_of(clip)
    page.evaluate(FROM_THE_TOP)
    at_rest = page.screenshot(clip=clip)
    page.keyboard.press("Tab")  # the first stop of the page: the selected method
    expect(method).to_be_focused()
    assert page.screenshot(clip=clip) != at_rest, "the selected method shows no focus"
    ring = method.evaluate(
        "el => { const s = getComputedStyle(el);"
        " return {style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor,"
        " surface: getComputedStyle(el.closest('.pay-panel')).backgroundColor}; }"
    )
    assert ring["style"] != "none" and ring["width"] >= 2, ring
    ratio = contrast(parse_colour(ring["color"]), parse_colour(ring["surface"]))
    assert ratio >= UI, f"focus ring {ring['color']} on {ring['surface']}: {ratio:.2f}:1"


@pytest.mark.parametrize("browsing", ["desktop"], indirect=True)
def test_the_checkout_works_with_the_keyboard_alone(site, browsing):
    _, page = browsing
    open_checkout(page, site, create_order(site)["id"])
    labels = walk_tab_stops(page)
    assert labels == ["method-upi", "method-card", "vpa-input", "pay-button"], labels

    page.get_by_test_id("method-card").focus()
    page.keyboard.press("Space")  # choose the card: its form opens with focus in it
    expect(page.get_by_test_id("card-number-input")).to_be_focused()
    labels = walk_tab_stops(page)
    assert labels[2:] == [
        "card-number-input",
        "expiry-input",
        "cvv-input",
        "cardholder-name-input",
        "pay-button",
    ], labels

    page.get_by_test_id("pay-button").focus()
    page.keyboard.press("Enter")  # empty form: errors, focus on the first field in error
    expect(page.get_by_test_id("card-number-input")).to_be_focused()
    page.keyboard.type("4242 4242 4242 4242")
    page.keyboard.press("Tab")
    page.keyboard.type("12/30")
    page.keyboard.press("Tab")
    page.keyboard.type("123")
    page.keyboard.press("Tab")
    page.keyboard.type("Asha Rao")
    page.keyboard.press("Tab")
    expect(page.get_by_test_id("pay-button")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("success-state")).to_be_visible()


@pytest.mark.parametrize("browsing", ["desktop"], indirect=True)
def test_the_dashboard_works_with_the_keyboard_alone(site, browsing):
    _, page = browsing
    page.context.clear_cookies()
    page.goto(site.dashboard_url + "/login")
    assert walk_tab_stops(page) == ["email-input", "password-input", "login-button"]
    page.get_by_test_id("email-input").focus()
    page.keyboard.type("test@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type("any password")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(site.dashboard_url + "/dashboard")

    labels = walk_tab_stops(page)
    assert labels[:7] == [
        "Paygate home",
        "Home",
        "Transactions",
        "Webhooks",
        "Processor",
        "Docs",
        "Account",
    ], labels

    summary = page.locator(".chart-data summary")
    summary.focus()
    page.keyboard.press("Space")  # a disclosure opens with Space
    expect(page.locator(".chart-data")).to_have_attribute("open", "")
    page.get_by_role("link", name="Transactions", exact=True).focus()
    page.keyboard.press("Enter")  # a link follows with Enter
    page.wait_for_url(site.dashboard_url + "/dashboard/transactions")
    expect(page.get_by_test_id("transactions-table")).to_be_visible()


@pytest.mark.parametrize("browsing", ["desktop", "phone"], indirect=True)
def test_every_dashboard_page_can_be_walked_with_the_keyboard(site, browsing):
    """Every stop of every signed-in page is reached by Tab in document order and shows its
    focus; what fails on any page is collected and reported together."""
    size, page = browsing
    page.context.clear_cookies()  # the module's page may be signed in already
    sign_in(page, site)
    failed = {}
    for name, path in dashboard_pages(page, site):
        page.goto(site.dashboard_url + path)
        page.wait_for_load_state()
        try:
            labels = walk_tab_stops(page)
        except (AssertionError, PlaywrightError) as exc:
            failed[name] = str(exc).splitlines()[0]
            continue
        if name != "unknown page":  # a 404 outside the app offers the way to sign in only
            assert "Transactions" in labels, f"{name}: the navigation is unreachable: {labels}"
    assert not failed, f"[{size}] " + "; ".join(f"{k}: {v}" for k, v in failed.items())
