// The games view: a tablist of the four games (slot, gacha, rock-paper-scissors,
// crash), one panel each, and one shared result area (`game-result`, with the retry
// button of a play whose answer was lost).
//
// Outcomes are decided by the server only; this view sends the player's inputs and
// shows what came back. The header balance is not touched here: it follows the
// realtime pushes (the shell's job), so what the header shows is what the server says.

import * as crash from "../games/crash.js";
import * as gacha from "../games/gacha.js";
import * as rps from "../games/rps.js";
import { createRunner } from "../games/runner.js";
import * as slot from "../games/slot.js";
import { ensureStyles } from "../games/styles.js";

const GAMES = [slot, gacha, rps, crash];
let remembered = "slot"; // the last tab, kept while the page lives

export function mount(root, ctx) {
  ensureStyles();
  const el = ctx.el;
  const runner = createRunner(ctx);
  const games = GAMES.map((m) => m.create(ctx, runner));

  const tabs = games.map((g) =>
    el(
      "button",
      {
        id: `game-tab-${g.id}`,
        testid: `game-tab-${g.id}`,
        type: "button",
        role: "tab",
        class: "tab",
        "aria-controls": `game-panel-${g.id}`,
        "aria-selected": "false",
      },
      g.label,
    ),
  );
  const panels = games.map((g) => {
    const panel = el(
      "section",
      {
        id: `game-panel-${g.id}`,
        testid: `game-panel-${g.id}`,
        role: "tabpanel",
        class: "tabpanel",
        "aria-labelledby": `game-tab-${g.id}`,
      },
      g.panel,
    );
    panel.hidden = true;
    return panel;
  });
  const tablist = el("div", { role: "tablist", class: "tablist game-tabs", "aria-label": "Games" }, ...tabs);

  function select(index, { focus = false } = {}) {
    tabs.forEach((tab, i) => {
      const on = i === index;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      tab.classList.toggle("active", on);
      panels[i].hidden = !on;
    });
    remembered = games[index].id;
    runner.show(games[index].id);
    if (focus) tabs[index].focus();
  }

  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(i));
    tab.addEventListener("keydown", (ev) => {
      const last = tabs.length - 1;
      let next = null;
      if (ev.key === "ArrowRight" || ev.key === "ArrowDown") next = i === last ? 0 : i + 1;
      else if (ev.key === "ArrowLeft" || ev.key === "ArrowUp") next = i === 0 ? last : i - 1;
      else if (ev.key === "Home") next = 0;
      else if (ev.key === "End") next = last;
      if (next !== null) {
        ev.preventDefault();
        select(next, { focus: true });
      }
    });
  });

  root.append(
    el(
      "div",
      { class: "games-view", testid: "games-view" },
      el("h2", { class: "view-title" }, "Games"),
      tablist,
      ...panels,
      runner.element,
    ),
  );
  const start = Math.max(0, games.findIndex((g) => g.id === remembered));
  select(start);

  return () => {
    runner.dispose();
    root.textContent = "";
  };
}
