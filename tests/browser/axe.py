"""axe-core in a page or frame, and the contrast axe cannot compute measured on rendered pixels.

axe-core is the copy the PyPI package ``axe-playwright-python`` ships (``axe.min.js``, read from
disk; nothing is downloaded at test time). It runs with the WCAG 2.0/2.1/2.2 A and AA rules,
``target-size`` included, in one frame at a time (the SDK's host page and its checkout frame are
two runs), next to one check of ours: every visible field has a label that stays (axe takes a
placeholder for a name). Text whose contrast axe reports "incomplete" (a gradient or an SVG
chart behind it, an overlapping element) is measured here instead: the element is
screenshotted with its text made transparent, and the text colour is compared with every pixel
behind its text; the worst must still give 4.5:1 (3:1 for large text).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from axe_playwright_python.base import AXE_SCRIPT

from tests.contrast import LARGE, TEXT, contrast, over, parse_colour

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
OPTIONS = {
    "runOnly": {"type": "tag", "values": TAGS},
    "rules": {"target-size": {"enabled": True}},
    "resultTypes": ["violations", "incomplete"],
    "iframes": False,  # each frame is its own run (a frame without axe would stall the run)
}

HIDE_TEXT = """el => {
  const nodes = [el, ...el.querySelectorAll('*')];
  el.__a11ySaved = nodes.map(n => [n, n.getAttribute('style')]);
  for (const n of nodes) {
    n.style.setProperty('color', 'transparent', 'important');
    n.style.setProperty('fill', 'transparent', 'important');
    n.style.setProperty('text-shadow', 'none', 'important');
    n.style.setProperty('caret-color', 'transparent', 'important');
    n.style.setProperty('-webkit-text-fill-color', 'transparent', 'important');
  }
}"""
RESTORE_TEXT = """el => {
  for (const [n, style] of el.__a11ySaved) {
    if (style === null) n.removeAttribute('style'); else n.setAttribute('style', style);
  }
  delete el.__a11ySaved;
}"""
# The text's colour (an SVG text's is its fill), size and weight, and where the text itself
# sits inside the element's box: the rectangles of its text nodes (a field's content box, an SVG
# text's own box), so the rounded corners of a button or the tick of a checkbox beside the text
# are not taken for its background.
TEXT_STYLE = """el => {
  const s = getComputedStyle(el);
  const svg = el instanceof SVGElement;
  const box = el.getBoundingClientRect();
  const at = r => ({x: r.left - box.left, y: r.top - box.top, width: r.width, height: r.height});
  let rects = [];
  if (svg) {
    rects = [at(box)];
  } else if (['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName)) {
    const px = name => parseFloat(s[name]) || 0;
    const left = box.left + px('borderLeftWidth') + px('paddingLeft');
    const top = box.top + px('borderTopWidth') + px('paddingTop');
    const right = box.right - px('borderRightWidth') - px('paddingRight');
    const bottom = box.bottom - px('borderBottomWidth') - px('paddingBottom');
    rects = [at({left, top, width: right - left, height: bottom - top})];
  } else {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim()) continue;
      range.selectNodeContents(node);
      for (const r of range.getClientRects()) if (r.width && r.height) rects.push(at(r));
    }
  }
  return {color: svg ? s.fill : s.color, size: parseFloat(s.fontSize),
    weight: parseInt(s.fontWeight, 10), width: box.width, rects};
}"""

# The distinct colours of a screenshot inside the text's rectangles, decoded by the browser
# (a PNG decoder in Python would cost more than the rest of the test).
PIXELS = """async ({png, rects, width}) => {
  const bytes = Uint8Array.from(atob(png), c => c.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes], {type: 'image/png'}));
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d');
  context.drawImage(bitmap, 0, 0);
  const data = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const scale = width ? bitmap.width / width : 1;
  const seen = new Set();
  for (const r of rects) {
    const left = Math.max(Math.floor(r.x * scale), 0);
    const top = Math.max(Math.floor(r.y * scale), 0);
    const right = Math.min(Math.ceil((r.x + r.width) * scale), bitmap.width);
    const bottom = Math.min(Math.ceil((r.y + r.height) * scale), bitmap.height);
    for (let y = top; y < bottom; y++) {
      for (let x = left; x < right; x++) {
        const i = (y * bitmap.width + x) * 4;
        seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      }
    }
  }
  return [...seen].map(c => [c >> 16, (c >> 8) & 255, c & 255]);
}"""


@dataclass
class Findings:
    """Everything one test found, over all its pages: reported together at the end."""

    problems: list[str] = field(default_factory=list)
    measured: list[str] = field(default_factory=list)
    runs: int = 0
    # (framed, page path, selector) -> what was measured there: the states of one page (the
    # checkout's summary panel in each state) share their measurements.
    cache: dict[tuple[bool, str, str], tuple[float, float, str]] = field(default_factory=dict)

    def assert_none(self) -> None:
        """Fail with every problem, readably (not pytest's repr of this object)."""
        if self.problems:
            raise AssertionError(self.report())

    def report(self) -> str:
        lines = [f"{len(self.problems)} accessibility problem(s) in {self.runs} axe runs:"]
        lines += self.problems
        if self.measured:
            lines.append("contrast measured on pixels (axe: incomplete):")
            lines += self.measured
        return "\n".join(lines)


def run_axe(frame) -> dict:
    """axe.run over the whole document of ``frame`` (a Page or a Frame)."""
    if not frame.evaluate("() => typeof window.axe === 'object'"):
        frame.evaluate(AXE_SCRIPT)
    return frame.evaluate("options => axe.run(document, options)", OPTIONS)


# Fields whose only name is their placeholder: axe accepts it as a name, but it goes away as
# the buyer types (3.3.2 Labels or Instructions wants a label that stays).
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(el => el.checkVisibility({visibilityProperty: true}))
  .filter(el => !el.labels.length && !el.getAttribute('aria-labelledby')
    && !(el.getAttribute('aria-label') || '').trim())
  .map(el => el.outerHTML.replace(/\\s+/g, ' ').slice(0, 160))"""


def check(frame, where: str, findings: Findings) -> None:
    """Run axe in ``frame``; record every violation, and measure the contrast axe left open."""
    results = run_axe(frame)
    findings.runs += 1
    for field_html in frame.evaluate(UNLABELLED):
        findings.problems.append(
            f"- {where}: label (3.3.2): a field without a label or aria-label(ledby)\n"
            f"    {field_html}"
        )
    for violation in results["violations"]:
        for node in violation["nodes"]:
            findings.problems.append(
                f"- {where}: {violation['id']} ({violation['impact']}): {violation['help']}\n"
                f"    at {' '.join(map(str, node['target']))}: {node['html'][:160]}\n"
                f"    {(node.get('failureSummary') or '').replace(chr(10), ' ')}"
            )
    for incomplete in results["incomplete"]:
        if incomplete["id"] != "color-contrast":
            continue
        for node in incomplete["nodes"]:
            target = node["target"][-1]
            framed = getattr(frame, "parent_frame", None) is not None
            key = (framed, frame.url.split("?")[0], target)
            if key not in findings.cache:
                findings.cache[key] = measure(frame, target)
            ratio, needed, colour = findings.cache[key]
            line = f"- {where}: {target}: {ratio:.2f}:1 ({colour} on the rendered pixels)"
            findings.measured.append(line)
            if ratio < needed:
                findings.problems.append(
                    f"{line}\n    color-contrast (measured): needs {needed}:1, "
                    f"axe could not tell: {incomplete['help']}"
                )


def measure(frame, selector: str) -> tuple[float, float, str]:
    """The worst contrast of the element's text colour against the pixels behind its text,
    the minimum it needs, and the text colour."""
    element = frame.locator(selector).first
    style = element.evaluate(TEXT_STYLE)
    large = style["size"] >= 24 or (style["size"] >= 18.66 and style["weight"] >= 700)
    element.evaluate(HIDE_TEXT)
    try:
        png = element.screenshot(animations="disabled", caret="hide")
    finally:
        element.evaluate(RESTORE_TEXT)
    text = parse_colour(style["color"])
    behind = frame.evaluate(
        PIXELS,
        {"png": base64.b64encode(png).decode(), "rects": style["rects"], "width": style["width"]},
    )
    worst = min(
        contrast(over(text, (*pixel, 1.0)) if text[3] < 1 else text, pixel) for pixel in behind
    )
    return worst, LARGE if large else TEXT, style["color"]
