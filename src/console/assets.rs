//! The console's static files, compiled into the binary. Each is served under
//! a name carrying a hash of its content, so browsers may keep it for a year:
//! a new build with a changed file links to a new name.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: [Asset; 4] = [
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/console.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("assets/favicon.svg"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/console.js"),
    },
    // htmx 2.0.11, vendored as published (licence: assets/htmx-LICENSE, 0BSD).
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/htmx-2.0.11.min.js"),
    },
];

/// Each file's served name: `<first 12 hex digits of its SHA-256>-<name>`.
static SERVED: LazyLock<Vec<(String, &'static Asset)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|asset| {
            let digest = hex::encode(Sha256::digest(asset.bytes));
            (format!("{}-{}", &digest[..12], asset.name), asset)
        })
        .collect()
});

/// The URL `name` (as in `FILES`) is served at.
pub fn url(name: &str) -> String {
    let served = SERVED
        .iter()
        .find(|(_, asset)| asset.name == name)
        .map(|(served, _)| served)
        .expect("only files in FILES are linked");
    format!("/console/assets/{served}")
}

pub async fn serve(Path(file): Path<String>) -> Response {
    let Some((_, asset)) = SERVED.iter().find(|(served, _)| *served == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.bytes,
    )
        .into_response()
}
