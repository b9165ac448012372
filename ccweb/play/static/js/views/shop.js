// The shop: the catalog (price, what a product grants, stock, sale window, limits),
// purchase, the player's inventory and recent purchases.
//
// A click on "Buy" makes one idempotency key (sent in the body, SPEC §3). If the answer
// is lost (network error, 5xx, IN_PROGRESS) the `purchase-retry` button sends the same
// key again: the server replays the purchase it made instead of making a second one.

import { ensureStyles } from "../games/styles.js";

const PURCHASES_LIMIT = 5;

// Kept while the page lives (the shell mounts the view afresh on every visit): the last
// purchase result and a purchase whose answer was lost, so coming back to the shop still
// offers the retry with the same key.
const memory = { pending: null, result: null };

function gold(n) {
  return `${Number(n).toLocaleString()} gold`;
}

function when(iso) {
  try {
    return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  } catch {
    return iso;
  }
}

/** What a product costs, as text. */
export function priceText(p) {
  if (p.category === "conversion") return `${Number(p.points_price).toLocaleString()} points`;
  return gold(p.price_gold);
}

/** What a product gives, as text. */
export function grantsText(p) {
  const parts = [];
  if (p.gold_amount) parts.push(gold(p.gold_amount));
  for (const it of p.items || []) parts.push(`${it.quantity} × ${it.code.replace(/_/g, " ")}`);
  return parts.join(" + ") || "nothing";
}

/** Stock as text: null = unlimited. */
export function stockText(p) {
  if (p.stock_remaining === null || p.stock_remaining === undefined) return "Unlimited stock";
  if (p.stock_remaining === 0) return "Sold out";
  return `${Number(p.stock_remaining).toLocaleString()} left`;
}

/** The sale window as text ("" when always on sale). */
export function windowText(p) {
  if (p.starts_at && p.ends_at) return `On sale ${when(p.starts_at)} – ${when(p.ends_at)}`;
  if (p.ends_at) return `On sale until ${when(p.ends_at)}`;
  if (p.starts_at) return `On sale since ${when(p.starts_at)}`;
  return "";
}

function retryable(res) {
  const code = res.error && res.error.code;
  return code === "NETWORK" || code === "IN_PROGRESS" || !res.status || res.status >= 500;
}

export function mount(root, ctx) {
  ensureStyles();
  const el = ctx.el;
  let alive = true;
  let products = [];
  let busy = false;
  const buttons = new Map(); // sku → buy button

  const grid = el("div", { class: "shop-grid", testid: "shop-catalog", "aria-label": "Products" });
  const result = el("div", { testid: "purchase-result", class: "purchase-result", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  const resultText = el("p", {});
  const retry = el("button", { testid: "purchase-retry", type: "button", class: "btn ghost" }, "Retry the same purchase");
  retry.hidden = true;
  result.append(resultText, retry);
  const inventory = el("ul", { testid: "shop-inventory", class: "shop-inventory", "aria-label": "Your items" });
  const purchases = el("ul", { testid: "shop-purchases", class: "shop-purchases", "aria-label": "Your recent purchases" });

  function setResult(status, text, data = {}) {
    memory.result = { status, text, data };
    result.dataset.status = status;
    for (const k of ["txId", "sku", "errorCode"]) delete result.dataset[k];
    if (data.txId) result.dataset.txId = String(data.txId);
    if (data.sku) result.dataset.sku = data.sku;
    if (data.errorCode) result.dataset.errorCode = data.errorCode;
    result.dataset.replayed = data.replayed ? "true" : "false";
    result.classList.toggle("is-error", status === "error");
    result.classList.toggle("is-ok", status === "success");
    resultText.textContent = text;
    retry.hidden = !(status === "error" && memory.pending);
    retry.disabled = busy;
  }

  function card(p) {
    const soldOut = p.stock_remaining === 0;
    const buy = el(
      "button",
      { testid: `buy-${p.sku}`, type: "button", class: "btn", "aria-label": `Buy ${p.name} for ${priceText(p)}` },
      soldOut ? "Sold out" : `Buy · ${priceText(p)}`,
    );
    buy.disabled = soldOut || busy;
    buy.addEventListener("click", () => purchase(p, ctx.newKey()));
    buttons.set(p.sku, buy);
    const badges = [];
    if (p.limit_once) badges.push(el("span", { class: "badge" }, "Once per player"));
    if (p.tier_required && p.tier_required !== "STANDARD") badges.push(el("span", { class: "badge badge-tier" }, `${p.tier_required}+`));
    const win = windowText(p);
    return el(
      "article",
      { testid: `product-${p.sku}`, class: `product-card category-${p.category}${soldOut ? " sold-out" : ""}`, "data-product-id": String(p.id) },
      el("h3", { class: "product-name" }, p.name),
      ...(badges.length ? [el("div", { class: "badges" }, ...badges)] : []),
      ...(p.description ? [el("p", { class: "product-description" }, p.description)] : []),
      el(
        "dl",
        { class: "product-facts" },
        el("dt", {}, "Price"),
        el("dd", { testid: `price-${p.sku}` }, priceText(p)),
        el("dt", {}, "You get"),
        el("dd", {}, grantsText(p)),
        el("dt", {}, "Stock"),
        el("dd", { testid: `stock-${p.sku}` }, stockText(p)),
        ...(win ? [el("dt", {}, "Sale"), el("dd", { testid: `window-${p.sku}` }, win)] : []),
      ),
      buy,
    );
  }

  function renderCatalog() {
    grid.textContent = "";
    buttons.clear();
    if (!products.length) {
      grid.append(el("p", { class: "empty" }, "Nothing on sale right now."));
      return;
    }
    for (const p of products) grid.append(card(p));
  }

  async function loadCatalog() {
    const res = await ctx.api.get("/api/shop/catalog");
    if (!alive) return;
    if (!res.ok) {
      grid.textContent = "";
      grid.append(el("p", { class: "empty" }, ctx.errorText(res.error)));
      return;
    }
    products = Array.isArray(res.data) ? res.data : res.data.items || [];
    renderCatalog();
  }

  async function loadMine() {
    const [profile, recent] = await Promise.all([
      ctx.api.get("/api/profile"),
      ctx.api.get(`/api/shop/purchases?limit=${PURCHASES_LIMIT}`),
    ]);
    if (!alive) return;
    inventory.textContent = "";
    const items = profile.ok ? profile.data.inventory || [] : [];
    if (!items.length) inventory.append(el("li", { class: "empty" }, "No items yet."));
    for (const it of items) {
      inventory.append(el("li", { testid: `inventory-${it.item_code}` }, `${it.quantity} × ${it.item_code.replace(/_/g, " ")}`));
    }
    purchases.textContent = "";
    const rows = recent.ok ? recent.data.items : [];
    if (!rows.length) purchases.append(el("li", { class: "empty" }, "No purchases yet."));
    for (const r of rows) {
      const settle = r.settlement_status ? ` · settlement ${r.settlement_status}` : "";
      purchases.append(
        el("li", { testid: `purchase-${r.tx_id}` }, `#${r.tx_id} ${r.sku} × ${r.quantity}: ${r.gold_delta >= 0 ? "+" : "−"}${gold(Math.abs(r.gold_delta))}${settle} · ${when(r.created_at)}`),
      );
    }
  }

  function setBusy(on) {
    busy = on;
    for (const [sku, b] of buttons) {
      const p = products.find((x) => x.sku === sku);
      b.disabled = on || (p && p.stock_remaining === 0);
    }
    retry.disabled = on;
  }

  async function purchase(product, key) {
    if (busy) return;
    setBusy(true);
    memory.pending = null;
    setResult("pending", `Buying ${product.name}…`, { sku: product.sku });
    let res;
    try {
      res = await ctx.api.post("/api/shop/purchase", { product_id: product.id, idempotency_key: key, quantity: 1 });
    } catch (err) {
      res = { ok: false, status: 0, error: { code: "NETWORK", message: String(err) } };
    }
    // even if the view was left meanwhile: the result (and a retry) is remembered
    setBusy(false);
    if (res.ok) {
      const d = res.data;
      const grants = [];
      if (d.gold_amount) grants.push(`+${gold(d.gold_amount)}`);
      for (const it of d.items || []) grants.push(`+${it.quantity} ${it.code.replace(/_/g, " ")}`);
      const cost = d.category === "conversion" ? `${Number(d.points_price).toLocaleString()} points` : `−${gold(d.price_gold)}`;
      const receipt = d.receipt ? ` Receipt ${String(d.receipt.integrity_hash).slice(0, 12)}… signed (key v${d.receipt.signature_version}).` : "";
      const settle = d.settlement_status ? ` Settlement ${d.settlement_status}.` : "";
      const again = res.replayed ? " (Replayed: this purchase had already gone through; you were charged once.)" : "";
      setResult("success", `Purchase complete: ${d.name || product.name}, transaction #${d.tx_id}: ${[cost, ...grants].join(", ")}.${receipt}${settle}${again}`, { txId: d.tx_id, sku: product.sku, replayed: res.replayed });
      // no toast here: the shell toasts the purchase_update push (on every open tab)
      loadCatalog();
      loadMine();
      return;
    }
    const code = res.error && res.error.code;
    const message = ctx.errorText(res.error);
    if (retryable(res)) {
      memory.pending = { product, key };
      setResult("error", `${message} The purchase may or may not have gone through: retry to find out (you will not be charged twice).`, { sku: product.sku, errorCode: code });
    } else {
      setResult("error", message, { sku: product.sku, errorCode: code });
    }
    ctx.toast(message, "error");
    if (code === "OUT_OF_STOCK" || code === "LIMIT_REACHED" || code === "NOT_FOUND") loadCatalog();
  }

  retry.addEventListener("click", () => {
    if (memory.pending) purchase(memory.pending.product, memory.pending.key);
  });

  // A purchase from another tab or a settlement changes stock and inventory.
  const unsubscribe = ctx.live.on("purchase_update", () => {
    if (!alive || busy) return;
    loadCatalog();
    loadMine();
  });

  root.append(
    el(
      "div",
      { class: "shop-view", testid: "shop-view" },
      el("h2", { class: "view-title" }, "Shop"),
      result,
      grid,
      el(
        "div",
        { class: "shop-mine" },
        el("section", { class: "card", "aria-labelledby": "shop-inventory-h" }, el("h3", { id: "shop-inventory-h" }, "Your items"), inventory),
        el("section", { class: "card", "aria-labelledby": "shop-purchases-h" }, el("h3", { id: "shop-purchases-h" }, "Recent purchases"), purchases),
      ),
    ),
  );
  const last = memory.result;
  if (last && last.status !== "pending") setResult(last.status, last.text, last.data);
  else setResult("idle", "");
  loadCatalog();
  loadMine();

  return () => {
    alive = false;
    unsubscribe?.();
    root.textContent = "";
  };
}
