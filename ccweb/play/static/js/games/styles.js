// The stylesheet of the games, fairness and shop views, added to the page once by the
// first of these views to mount (unless the page already links it), so the views carry
// their own look wherever the shell mounts them.

const HREF = "/play/static/css/games.css";

export function ensureStyles() {
  const present = [...document.querySelectorAll('link[rel="stylesheet"]')].some((l) => l.getAttribute("href") === HREF);
  if (present) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = HREF;
  document.head.append(link);
}
