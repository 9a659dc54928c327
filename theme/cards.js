// Tables that read on a phone (theme/diagrams.css, "Tables as cards").
//
// For every table of the page this script
// - copies each header cell's text into a data-label attribute of the cells
//   of its column, which a stacked table shows above each cell;
// - stacks the table (class "stacked": one card per row, each cell a block
//   under its label) when its column is narrower than 600 px, a phone, or
//   than the table needs; again when the window or its fonts change;
// - gives the table, its rows and cells their ARIA roles, which a table
//   displayed as blocks loses in some browsers;
// - lets long identifiers in code wrap where a reader would break them
//   (after "_", "::", or a ".", "/" or "," before a letter), so that a wide
//   column of code does not make the table wider than the text on a
//   desktop. <wbr> adds no character: what is copied is what was written.
(function () {
    "use strict";

    var breakAfter = /(::|[_./,](?=[A-Za-z&*]))/g;

    function breakCode(code) {
        var walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
        var texts = [];
        while (walker.nextNode()) texts.push(walker.currentNode);
        texts.forEach(function (text) {
            var value = text.nodeValue;
            var parts = [];
            var last = 0;
            value.replace(breakAfter, function (match, _group, offset) {
                var end = offset + match.length;
                // Not at the very start or end of the code: "_x", "x.".
                if (end > 1 && end < value.length) {
                    parts.push(value.slice(last, end));
                    last = end;
                }
                return match;
            });
            if (parts.length === 0) return;
            parts.push(value.slice(last));
            var fragment = document.createDocumentFragment();
            parts.forEach(function (part, i) {
                if (i > 0) fragment.appendChild(document.createElement("wbr"));
                fragment.appendChild(document.createTextNode(part));
            });
            text.parentNode.replaceChild(fragment, text);
        });
    }

    function label(table) {
        var head = table.tHead && table.tHead.rows[0];
        if (!head) return;
        var names = Array.prototype.map.call(head.cells, function (th) {
            return th.textContent.replace(/\s+/g, " ").trim();
        });
        table.setAttribute("role", "table");
        Array.prototype.forEach.call(table.children, function (group) {
            if (/^T(HEAD|BODY|FOOT)$/.test(group.tagName)) group.setAttribute("role", "rowgroup");
        });
        Array.prototype.forEach.call(head.cells, function (th) { th.setAttribute("role", "columnheader"); });
        Array.prototype.forEach.call(table.rows, function (row) {
            row.setAttribute("role", "row");
            if (row.parentNode === table.tHead) return;
            var column = 0;
            Array.prototype.forEach.call(row.cells, function (cell) {
                if (!cell.hasAttribute("role")) cell.setAttribute("role", cell.tagName === "TH" ? "rowheader" : "cell");
                var name = names[column];
                if (name && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", name);
                column += cell.colSpan || 1;
            });
        });
        Array.prototype.forEach.call(table.querySelectorAll("td code, th code"), breakCode);
    }

    var narrow = 600;
    var tables = Array.prototype.filter.call(document.querySelectorAll("main table"), function (table) {
        return table.tHead && table.tHead.rows.length > 0;
    });

    // All writes, then all reads, then all writes: one layout, not one per table.
    function stack() {
        tables.forEach(function (table) { table.classList.remove("stacked"); });
        var stacked = tables.map(function (table) {
            var column = table.parentElement.clientWidth;
            return column <= narrow || table.getBoundingClientRect().width > column + 1;
        });
        tables.forEach(function (table, i) { table.classList.toggle("stacked", stacked[i]); });
    }

    tables.forEach(label);
    stack();
    var pending = false;
    function later() {
        if (pending) return;
        pending = true;
        window.requestAnimationFrame(function () { pending = false; stack(); });
    }
    window.addEventListener("resize", later);
    window.addEventListener("load", later);
    if (document.fonts && document.fonts.ready) document.fonts.ready.then(later);
})();
