//! The key portal's page and assets (`portal/`), built into the binaries that serve them: no
//! CDN, no third-party origin, no build step at run time.

/// One file of the page: its name under `/portal/`, content type, caching and text.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub cache_control: &'static str,
    pub body: &'static str,
}

/// The page itself: never cached (it is the door a session's token comes through).
pub const PAGE: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    cache_control: "no-store",
    body: include_str!("../portal/index.html"),
};

/// Its stylesheet and module, cacheable for a few minutes (a deploy reaches browsers soon).
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "portal.css",
        content_type: "text/css; charset=utf-8",
        cache_control: "public, max-age=300",
        body: include_str!("../portal/portal.css"),
    },
    Asset {
        name: "portal.js",
        content_type: "text/javascript; charset=utf-8",
        cache_control: "public, max-age=300",
        body: include_str!("../portal/portal.js"),
    },
];

pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}
