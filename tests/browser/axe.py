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
HIDE_ALL = f"""selectors => selectors.forEach(s => ({HIDE_TEXT})(document.querySelector(s)))"""
RESTORE_ALL = (
    f"""selectors => selectors.forEach(s => ({RESTORE_TEXT})(document.querySelector(s)))"""
)
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
    weight: parseInt(s.fontWeight, 10), rects,
    origin: {x: box.left + scrollX, y: box.top + scrollY}};
}"""

# For each list of rectangles (CSS pixels from the screenshot's top left), the distinct colours
# of the screenshot inside them, decoded by the browser (a PNG decoder in Python would cost more
# than the rest of the test).
PIXELS = """async ({png, areas}) => {
  const bytes = Uint8Array.from(atob(png), c => c.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes], {type: 'image/png'}));
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d');
  context.drawImage(bitmap, 0, 0);
  const data = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const scale = devicePixelRatio;
  return areas.map(rects => {
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
  });
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
        __tracebackhide__ = True
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
    framed = getattr(frame, "parent_frame", None) is not None
    open_contrast = [i for i in results["incomplete"] if i["id"] == "color-contrast"]
    targets = [node["target"][-1] for i in open_contrast for node in i["nodes"]]
    keys = {target: (framed, frame.url.split("?")[0], target) for target in targets}
    todo = sorted({target for target in targets if keys[target] not in findings.cache})
    for target, measured in zip(todo, measure(frame, todo), strict=True):
        findings.cache[keys[target]] = measured
    for incomplete in open_contrast:
        for node in incomplete["nodes"]:
            target = node["target"][-1]
            ratio, needed, colour = findings.cache[keys[target]]
            line = f"- {where}: {target}: {ratio:.2f}:1 ({colour} on the rendered pixels)"
            findings.measured.append(line)
            if ratio < needed:
                findings.problems.append(
                    f"{line}\n    color-contrast (measured): needs {needed}:1, "
                    f"axe could not tell: {incomplete['help']}"
                )


def measure(frame, selectors: list[str]) -> list[tuple[float, float, str]]:
    """For each element, the worst contrast of its text colour against the pixels behind its
    text, the minimum it needs, and the text colour. A page is screenshotted once for all of
    them (their text hidden); a frame, element by element (its own scrolling)."""
    if not selectors:
        return []
    styles = frame.evaluate(
        f"s => s.map(s => ({TEXT_STYLE})(document.querySelector(s)))", selectors
    )
    if getattr(frame, "parent_frame", None) is None:
        frame.evaluate(HIDE_ALL, selectors)
        areas = [
            [
                {**r, "x": r["x"] + s["origin"]["x"], "y": r["y"] + s["origin"]["y"]}
                for r in s["rects"]
            ]
            for s in styles
        ]
        rects = [r for area in areas for r in area] or [{"x": 0, "y": 0, "width": 1, "height": 1}]
        left, top = min(r["x"] for r in rects), min(r["y"] for r in rects)
        right = max(r["x"] + r["width"] for r in rects)
        bottom = max(r["y"] + r["height"] for r in rects)
        clip = {"x": left, "y": top, "width": max(right - left, 1), "height": max(bottom - top, 1)}
        try:
            png = frame.screenshot(full_page=True, clip=clip, animations="disabled", caret="hide")
        finally:
            frame.evaluate(RESTORE_ALL, selectors)
        areas = [[{**r, "x": r["x"] - left, "y": r["y"] - top} for r in area] for area in areas]
        behind = frame.evaluate(PIXELS, {"png": base64.b64encode(png).decode(), "areas": areas})
    else:
        behind = []
        for selector, style in zip(selectors, styles, strict=True):
            element = frame.locator(selector).first
            element.evaluate(HIDE_TEXT)
            try:
                png = element.screenshot(animations="disabled", caret="hide")
            finally:
                element.evaluate(RESTORE_TEXT)
            png64 = base64.b64encode(png).decode()
            behind += frame.evaluate(PIXELS, {"png": png64, "areas": [style["rects"]]})
    results = []
    for style, pixels in zip(styles, behind, strict=True):
        text = parse_colour(style["color"])
        worst = min(
            (
                contrast(over(text, (*pixel, 1.0)) if text[3] < 1 else text, pixel)
                for pixel in pixels
            ),
            default=21.0,
        )
        large = style["size"] >= 24 or (style["size"] >= 18.66 and style["weight"] >= 700)
        results.append((worst, LARGE if large else TEXT, style["color"]))
    return results
