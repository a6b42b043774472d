/* What the pages of this service share: JSON from its API (an error carries the API's own
 * message), DRF pages followed through `next`, the status line under the form, and tables
 * refilled from rows. */
const KlineApi = (function () {
  "use strict";

  async function fetchJSON(url) {
    const res = await fetch(url);
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.detail || `${res.status} ${res.statusText}`);
    return {body, headers: res.headers};
  }

  /* The body alone; fetchJSON also gives the headers, where an endpoint says more about a
   * page than its JSON shape allows (the bars' X-Kline-Calendar). */
  async function getJSON(url) {
    return (await fetchJSON(url)).body;
  }

  async function allPages(url, maxPages) {
    const out = [];
    for (let n = 0; url && n < maxPages; n++) {
      const page = await getJSON(url);
      out.push(...page.results);
      url = page.next;
    }
    return out;
  }

  function status(element, text, error) {
    element.textContent = text;
    element.className = error ? "error" : "";
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  /* Replace a table body's rows; a row's items are cells already made or values to show. */
  function fill(tbody, rows) {
    tbody.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      tr.append(...cells.map((c) => (c instanceof Node ? c : cell(String(c)))));
      return tr;
    }));
  }

  return {fetchJSON, getJSON, allPages, status, cell, fill};
})();
