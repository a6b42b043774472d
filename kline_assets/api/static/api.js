/* What the pages of this service share: JSON from its API (an error carries the API's own
 * message), DRF pages followed through `next`, and the status line under the form. */
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

  return {fetchJSON, getJSON, allPages, status};
})();
