// Sortable tables (click a header; numbers by data-sort, nulls last) and a full-size image viewer.
(function () {
  function key(td) {
    if (!td) return null;
    var v = td.getAttribute("data-sort");
    if (v === null) v = td.textContent.trim();
    if (v === "" || v === "None" || v === "null") return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function sortBy(table, th, idx) {
    var asc = !th.classList.contains("asc");
    table.querySelectorAll("th").forEach(function (h) { h.classList.remove("asc", "desc"); });
    th.classList.add(asc ? "asc" : "desc");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[idx]), y = key(b.cells[idx]);
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      if (x < y) return asc ? -1 : 1;
      if (x > y) return asc ? 1 : -1;
      return 0;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, idx) {
      th.classList.add("sortable");
      th.addEventListener("click", function () { sortBy(table, th, idx); });
    });
  });
  var box = document.getElementById("lightbox");
  if (box) {
    var big = box.querySelector("img"), cap = box.querySelector("p");
    document.querySelectorAll("img.thumb").forEach(function (img) {
      img.addEventListener("click", function () {
        big.src = img.getAttribute("data-full") || img.src;
        cap.textContent = img.getAttribute("alt") || "";
        box.classList.add("open");
      });
    });
    box.addEventListener("click", function () { box.classList.remove("open"); big.removeAttribute("src"); });
  }
})();
