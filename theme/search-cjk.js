// Search in Chinese. mdBook's index splits words at spaces and punctuation,
// so a Chinese sentence is one long "word" and a search for 关闭 finds
// nothing (mdBook#1081). A query with Chinese characters is answered here
// instead: each section whose title, path or text contains every term,
// ranked by how often, a title counting more. Other queries go to mdBook's
// search as before.
(function () {
    "use strict";

    if (typeof elasticlunr === "undefined") return;
    var cjk = /[\u3400-\u9fff\uf900-\ufaff]/;
    var search = elasticlunr.Index.prototype.search;

    function count(text, term) {
        var n = 0;
        for (var at = text.indexOf(term); at !== -1; at = text.indexOf(term, at + term.length)) n++;
        return n;
    }

    elasticlunr.Index.prototype.search = function (query, config) {
        if (!cjk.test(query)) return search.call(this, query, config);
        var terms = query.toLowerCase().split(/\s+/).filter(Boolean);
        var docs = this.documentStore.docs;
        var results = [];
        Object.keys(docs).forEach(function (ref) {
            var doc = docs[ref];
            var title = (doc.title || "").toLowerCase();
            var text = title + " " + (doc.breadcrumbs || "").toLowerCase() + " " + (doc.body || "").toLowerCase();
            var score = 0;
            for (var i = 0; i < terms.length; i++) {
                var n = count(text, terms[i]);
                if (n === 0) return;
                score += n + 5 * count(title, terms[i]);
            }
            results.push({ ref: ref, score: score, doc: doc });
        });
        return results.sort(function (a, b) { return b.score - a.score; });
    };
})();
