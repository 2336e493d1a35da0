// Appended to a copy of a Snakemake report by tests/test_report.py and run in headless Chromium:
// shows every image result through the report's own app (the view a reader gets by clicking the
// result), waits for the <img> the app renders to decode, and writes what it found as JSON into
// <pre id="dnpu-probe"> for `chromium --dump-dom` to return.
//
// Chromium's --virtual-time-budget jumps to the end of the budget as soon as no timer is pending,
// also while an image decodes on another thread: a ticking timer keeps virtual time moving in
// small steps until the probe is done.
const keepAlive = setInterval(() => {}, 50);
window.addEventListener("load", async () => {
    const found = {app_rendered: false, results: {}, error: null};
    const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    try {
        for (let i = 0; i < 50 && (typeof app === "undefined" || !document.querySelector("#app nav, #app div")); i++) {
            await pause(100);
        }
        found.app_rendered = typeof app !== "undefined" && document.querySelector("#app").children.length > 0;
        found.categories = Object.keys(categories);
        for (const [path, entry] of Object.entries(results)) {
            const record = {name: entry.name, mime: entry.mime_type, caption: entry.caption};
            found.results[path] = record;
            if (!entry.mime_type.startsWith("image/")) continue;
            app.setView({content: "img", contentPath: entry.data_uri});
            let img = null;
            for (let j = 0; j < 50 && !img; j++) {
                await pause(100);
                img = [...document.querySelectorAll("#app img")].find((node) => node.src === entry.data_uri);
            }
            record.shown = img !== null;
            if (img) {
                try { await img.decode(); } catch (e) { record.decode_error = String(e); }
                record.natural_width = img.naturalWidth;
                record.natural_height = img.naturalHeight;
                record.rendered_width = img.getBoundingClientRect().width;
            }
        }
    } catch (e) {
        found.error = String(e);
    }
    const out = document.createElement("pre");
    out.id = "dnpu-probe";
    out.textContent = JSON.stringify(found);
    document.body.appendChild(out);
    clearInterval(keepAlive);
});
