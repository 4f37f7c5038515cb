// The demo shop's front end: the official Snowplow browser tracker, its ecommerce plugin and the
// Signals browser plugin, pointed at the dev stack's collector and Signals API (window.DEMO).
import { newTracker, trackPageView, clearUserData } from "@snowplow/browser-tracker";
import {
  SnowplowEcommercePlugin,
  trackProductView,
  trackAddToCart,
  trackRemoveFromCart,
  trackCheckoutStep,
  trackTransaction,
} from "@snowplow/browser-plugin-snowplow-ecommerce";
import {
  SignalsPlugin,
  addInterventionHandlers,
  subscribeToInterventions,
} from "@snowplow/signals-browser-plugin";

const config = window.DEMO;
const CURRENCY = "USD";
const cart = new Map(); // product id -> quantity

newTracker("sp", config.collectorUrl, {
  appId: "demo-shop",
  platform: "web",
  eventMethod: "post",
  bufferSize: 1,
  plugins: [SnowplowEcommercePlugin(), SignalsPlugin()],
});
subscribeToInterventions({ endpoint: config.signalsUrl });
addInterventionHandlers({ demoShop: showIntervention });

function $(selector) {
  return document.querySelector(selector);
}

function product(id) {
  return config.products.find((p) => p.id === id);
}

function asEntity(p, quantity) {
  return { id: p.id, name: p.name, category: p.category, price: p.price, currency: CURRENCY, quantity };
}

function cartTotal() {
  let total = 0;
  for (const [id, quantity] of cart) total += product(id).price * quantity;
  return Math.round(total * 100) / 100;
}

function cartProducts() {
  return [...cart].map(([id, quantity]) => asEntity(product(id), quantity));
}

function showIntervention(intervention) {
  const log = document.createElement("li");
  log.textContent = `${intervention.name} v${intervention.version}`;
  log.dataset.intervention = intervention.name;
  $("#interventions").prepend(log);
  const banner = document.querySelector(`[data-banner="${intervention.name}"]`);
  if (banner) banner.hidden = false;
}

function renderCatalogue() {
  const list = $("#catalogue");
  list.replaceChildren(
    ...config.products.map((p) => {
      const item = document.createElement("li");
      item.className = "product";
      const link = document.createElement("a");
      link.href = `#/product/${p.id}`;
      link.dataset.product = p.id;
      link.textContent = `${p.name} - $${p.price.toFixed(2)}`;
      item.append(link);
      return item;
    }),
  );
}

function renderCart() {
  const items = $("#cart-items");
  items.replaceChildren(
    ...[...cart].map(([id, quantity]) => {
      const item = document.createElement("li");
      item.textContent = `${product(id).name} x ${quantity}`;
      const remove = document.createElement("button");
      remove.textContent = "remove";
      remove.dataset.remove = id;
      remove.addEventListener("click", () => removeFromCart(id));
      item.append(" ", remove);
      return item;
    }),
  );
  $("#cart-total").textContent = `$${cartTotal().toFixed(2)}`;
  $("#checkout").disabled = cart.size === 0;
}

function showProduct(id) {
  const p = product(id);
  if (!p) return;
  $("#product").hidden = false;
  $("#product-name").textContent = p.name;
  $("#product-price").textContent = `$${p.price.toFixed(2)}`;
  $("#product-category").textContent = p.category;
  $("#add-to-cart").dataset.product = p.id;
  document.title = `${p.name} | Demo shop`;
  trackPageView();
  trackProductView(asEntity(p));
}

function addToCart(id) {
  cart.set(id, (cart.get(id) || 0) + 1);
  renderCart();
  const p = product(id);
  trackAddToCart({ products: [asEntity(p, 1)], total_value: cartTotal(), currency: CURRENCY });
}

function removeFromCart(id) {
  const quantity = cart.get(id);
  if (!quantity) return;
  if (quantity > 1) cart.set(id, quantity - 1);
  else cart.delete(id);
  renderCart();
  trackRemoveFromCart({ products: [asEntity(product(id), 1)], total_value: cartTotal(), currency: CURRENCY });
}

function checkout() {
  const products = cartProducts();
  const revenue = cartTotal();
  trackCheckoutStep({ step: 1, payment_method: "card" });
  trackTransaction({
    transaction_id: `order-${Date.now()}`,
    revenue,
    currency: CURRENCY,
    payment_method: "card",
    total_quantity: products.reduce((n, p) => n + p.quantity, 0),
    products,
  });
  cart.clear();
  renderCart();
  $("#order-done").hidden = false;
}

function resetUser() {
  // A fresh domain_userid and session: the tracker forgets its ids and cookies.
  clearUserData();
  for (const cookie of document.cookie.split(";")) {
    const name = cookie.split("=")[0].trim();
    if (name.startsWith("_sp_")) document.cookie = `${name}=; Max-Age=0; path=/`;
  }
  location.hash = "";
  location.reload();
}

function route() {
  const match = location.hash.match(/^#\/product\/(.+)$/);
  if (match) showProduct(decodeURIComponent(match[1]));
  else {
    $("#product").hidden = true;
    document.title = "Demo shop";
    trackPageView();
  }
}

function domainUserId() {
  const cookie = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith("_sp_id."));
  return cookie ? decodeURIComponent(cookie.split("=")[1]).split(".")[0] : "";
}

function showIdentity() {
  $("#duid").textContent = domainUserId();
}

renderCatalogue();
renderCart();
$("#add-to-cart").addEventListener("click", (e) => addToCart(e.target.dataset.product));
$("#checkout").addEventListener("click", checkout);
$("#reset-user").addEventListener("click", resetUser);
window.addEventListener("hashchange", () => {
  route();
  showIdentity();
});
route();
showIdentity();
