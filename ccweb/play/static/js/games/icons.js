// Small inline SVG pictures for the slot symbols and the rock-paper-scissors hands.
// SVG rather than emoji: emoji need a colour-emoji font, which many machines (and
// headless browsers) lack, and a missing glyph shows as an empty box. The pictures are
// decorative (aria-hidden); the symbol's name is always shown next to them as text.

const NS = "http://www.w3.org/2000/svg";

function node(tag, attrs = {}, children = []) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  for (const c of children) n.append(c);
  return n;
}

function text(x, y, content, attrs) {
  const t = node("text", { x, y, "text-anchor": "middle", ...attrs });
  t.textContent = content;
  return t;
}

const DRAW = {
  cherry: () => [
    node("path", { d: "M21 5 C17 12 14 17 12 23 M21 5 C24 12 26 18 27 24", stroke: "#2f8f3a", "stroke-width": 2.2, fill: "none", "stroke-linecap": "round" }),
    node("ellipse", { cx: 25, cy: 7, rx: 6, ry: 3, fill: "#3fb34f", transform: "rotate(-20 25 7)" }),
    node("circle", { cx: 12, cy: 28, r: 7.5, fill: "#e0263f", stroke: "#8e1022", "stroke-width": 1.2 }),
    node("circle", { cx: 27.5, cy: 29, r: 7.5, fill: "#e0263f", stroke: "#8e1022", "stroke-width": 1.2 }),
    node("circle", { cx: 9.5, cy: 25.5, r: 2, fill: "#ff8a9a" }),
  ],
  lemon: () => [
    node("ellipse", { cx: 20, cy: 21, rx: 14, ry: 10.5, fill: "#ffe14d", stroke: "#c9a800", "stroke-width": 1.4 }),
    node("circle", { cx: 5.5, cy: 21, r: 2.6, fill: "#ffe14d", stroke: "#c9a800", "stroke-width": 1.2 }),
    node("circle", { cx: 34.5, cy: 21, r: 2.6, fill: "#ffe14d", stroke: "#c9a800", "stroke-width": 1.2 }),
    node("ellipse", { cx: 15, cy: 17, rx: 5, ry: 2.2, fill: "#fff3a6" }),
  ],
  orange: () => [
    node("circle", { cx: 20, cy: 23, r: 13, fill: "#ff9f1c", stroke: "#c46a00", "stroke-width": 1.4 }),
    node("ellipse", { cx: 25, cy: 8.5, rx: 6, ry: 3, fill: "#3fb34f", transform: "rotate(-25 25 8.5)" }),
    node("circle", { cx: 15, cy: 18, r: 3, fill: "#ffc266" }),
  ],
  bell: () => [
    node("path", { d: "M20 5 C12.5 5 9.5 11 9.5 18 V25 L5.5 30 H34.5 L30.5 25 V18 C30.5 11 27.5 5 20 5 Z", fill: "#ffc93c", stroke: "#b07d00", "stroke-width": 1.4 }),
    node("circle", { cx: 20, cy: 33.5, r: 3.5, fill: "#b07d00" }),
    node("path", { d: "M14 12 C13 15 13 18 13 21", stroke: "#fff0b3", "stroke-width": 2, fill: "none", "stroke-linecap": "round" }),
  ],
  bar: () => [
    node("rect", { x: 2.5, y: 11, width: 35, height: 18, rx: 3, fill: "#1d1b2e", stroke: "#ffd166", "stroke-width": 2 }),
    text(20, 24.5, "BAR", { "font-size": 11, "font-weight": 800, fill: "#ffd166", "font-family": "sans-serif" }),
  ],
  seven: () => [text(20, 34, "7", { "font-size": 36, "font-weight": 900, fill: "#e0263f", stroke: "#7a0d1c", "stroke-width": 1.2, "font-family": "sans-serif" })],
};

const HANDS = {
  rock: () => [
    node("path", { d: "M7 23 C6 13 13 8 21 8 C29 8 34 14 33 22 C32 30 26 34 19 33 C12 32 8 29 7 23 Z", fill: "#9aa0b4", stroke: "#5d6275", "stroke-width": 1.5 }),
    node("path", { d: "M13 17 C15 15 18 14 21 15 M22 25 C25 25 27 23 28 21", stroke: "#c9cde0", "stroke-width": 1.6, fill: "none", "stroke-linecap": "round" }),
  ],
  paper: () => [
    node("path", { d: "M10 5 H25 L31 11 V35 H10 Z", fill: "#f5f6fb", stroke: "#9aa0b4", "stroke-width": 1.5 }),
    node("path", { d: "M25 5 V11 H31", fill: "none", stroke: "#9aa0b4", "stroke-width": 1.5 }),
    node("path", { d: "M14 16 H27 M14 21 H27 M14 26 H24", stroke: "#c3c7d8", "stroke-width": 1.6, "stroke-linecap": "round" }),
  ],
  scissors: () => [
    node("path", { d: "M15 25 L29 5 M25 25 L11 5", stroke: "#cfd3e6", "stroke-width": 3.2, "stroke-linecap": "round" }),
    node("circle", { cx: 12.5, cy: 30, r: 5, fill: "none", stroke: "#ff6b7a", "stroke-width": 3 }),
    node("circle", { cx: 27.5, cy: 30, r: 5, fill: "none", stroke: "#ff6b7a", "stroke-width": 3 }),
  ],
};

function picture(parts, cls) {
  return node("svg", { viewBox: "0 0 40 40", class: cls, "aria-hidden": "true", focusable: "false" }, parts);
}

/** The picture of a slot symbol (cherry, lemon, orange, bell, bar, seven). */
export function symbolIcon(name) {
  const draw = DRAW[name];
  return picture(draw ? draw() : [text(20, 27, "?", { "font-size": 20, fill: "#555" })], "sym");
}

/** The picture of a hand (rock, paper, scissors). */
export function handIcon(name) {
  const draw = HANDS[name];
  return picture(draw ? draw() : [text(20, 27, "?", { "font-size": 20, fill: "#a9aed6" })], "hand");
}
