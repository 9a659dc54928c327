// The language picker: a link in the menu bar of every page to the same
// page in the other edition, English at the site's root, Chinese under
// zh-CN/ (po/README.md). It keeps the reader's place: the page, and the
// section in the address's fragment.
(function () {
    "use strict";

    var chinese = document.documentElement.lang === "zh-CN";
    var buttons = document.querySelector(".right-buttons");
    if (!buttons || typeof path_to_root === "undefined") return;
    // mdBook gives each page the way back to its edition's root.
    var root = new URL(path_to_root || "./", location.href);
    var other = new URL(chinese ? "../" : "zh-CN/", root);

    var link = document.createElement("a");
    link.className = "edition-switch";
    link.textContent = chinese ? "English" : "中文";
    link.lang = chinese ? "en" : "zh-CN";
    link.hreflang = link.lang;
    link.title = chinese ? "Read this page in English" : "阅读本页的中文版";
    link.setAttribute("aria-label", link.title);

    function update() {
        var page = location.pathname.slice(root.pathname.length) || "index.html";
        link.href = new URL(page, other).pathname + location.hash;
    }
    update();
    window.addEventListener("hashchange", update);
    buttons.insertBefore(link, buttons.firstChild);
})();
