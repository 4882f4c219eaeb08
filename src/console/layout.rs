//! The page shell every console page shares: head, navigation, sign-out, and
//! the CSRF token htmx sends with each call. What the navigation lists is
//! the caller's, so a console scoped to one application can use it too.

use super::assets;
use super::csrf;
use maud::{html, Markup, DOCTYPE};

/// What frames a signed-in page.
pub struct Chrome<'a> {
    /// The product's name in the header and titles.
    pub brand: &'a str,
    /// (href, label) of each section.
    pub nav: &'a [(&'a str, &'a str)],
    /// Where the sign-out form posts.
    pub sign_out: &'a str,
    pub csrf: &'a str,
    pub look: Look<'a>,
}

/// A brand's look beyond its name (the portal's; the console keeps the default).
#[derive(Default)]
pub struct Look<'a> {
    /// An image shown before the brand's name.
    pub logo_url: Option<&'a str>,
    /// A validated CSS colour for the header and primary buttons.
    pub accent: Option<&'a str>,
    /// `light` or `dark` whatever the system prefers; none: the system's.
    pub theme: Option<&'a str>,
}

/// A signed-in page: `section` is the href of the navigation entry it belongs to.
pub fn page(chrome: &Chrome, section: &str, title: &str, content: Markup) -> Markup {
    let htmx_headers = serde_json::json!({ "X-CSRF-Token": chrome.csrf }).to_string();
    html! {
        (DOCTYPE)
        html lang="en" data-theme=[chrome.look.theme] style=[chrome.look.accent.map(|c| format!("--accent: {c}"))] {
            (head(chrome.brand, title))
            body hx-headers=(htmx_headers) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand {
                        @if let Some(logo) = chrome.look.logo_url { img.logo src=(logo) alt=""; }
                        (chrome.brand)
                    }
                    nav aria-label="Sections" {
                        ul {
                            @for (href, label) in chrome.nav {
                                li {
                                    a href=(href) aria-current=[(*href == section).then_some("page")] { (label) }
                                }
                            }
                        }
                    }
                    form method="post" action=(chrome.sign_out) {
                        (token_field(chrome.csrf))
                        button type="submit" { "Sign out" }
                    }
                }
                main #main { (content) }
                (scripts())
            }
        }
    }
}

/// A page for someone not signed in (the sign-in form).
pub fn bare(brand: &str, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(brand, title))
            body { main #main { (content) } }
        }
    }
}

/// The hidden field that carries the CSRF token in a plain form.
pub fn token_field(token: &str) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(token); }
}

/// A button posting to `action`, as a real form, so it works from the
/// keyboard and without scripts.
pub fn post_button(action: &str, token: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (token_field(token))
            button type="submit" { (label) }
        }
    }
}

fn head(brand: &str, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            // Swapped-in fragments are data: htmx must never run scripts in them.
            meta name="htmx-config" content=r#"{"allowScriptTags":false}"#;
            title { (title) " · " (brand) }
            link rel="stylesheet" href=(assets::url("console.css"));
            // Else browsers ask for /favicon.ico, which the API answers 401.
            link rel="icon" type="image/svg+xml" href=(assets::url("favicon.svg"));
        }
    }
}

fn scripts() -> Markup {
    html! {
        script src=(assets::url("htmx.min.js")) {}
        script src=(assets::url("console.js")) {}
    }
}
