//! Just enough HTML for the emulators' interactive pages.

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page in the look of a vendor sign-in screen (plain, centred, no scripts).
pub fn page(title: &str, body: &str) -> String {
    page_of("Microsoft Entra ID emulator", title, body)
}

/// The same page, naming another emulator in its banner.
pub fn page_of(emulator: &str, title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:"Segoe UI",system-ui,sans-serif;background:#f2f2f2;margin:0;display:flex;justify-content:center}}
main{{background:#fff;margin-top:8vh;padding:44px;width:min(440px,90vw);box-shadow:0 2px 6px rgba(0,0,0,.2)}}
h1{{font-size:1.5rem;font-weight:600;margin:0 0 .5rem}} .sandbox{{color:#8a5a00;font-size:.8rem;text-transform:uppercase;letter-spacing:.05em}}
button{{display:block;width:100%;text-align:left;margin:.5rem 0;padding:.75rem;border:1px solid #ccc;background:#fff;cursor:pointer;font:inherit}}
button:hover,button:focus{{background:#eef4fb;border-color:#0067b8}} small{{display:block;color:#555}}
.error{{color:#a4262c}} code{{word-break:break-all}}
</style></head><body><main><p class="sandbox">cosell sandbox · {emulator}</p>{body}</main></body></html>"#,
        title = escape(title),
        emulator = escape(emulator),
    )
}
