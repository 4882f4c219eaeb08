//! The typed settings of a source's `verification` (`{type, configs}`) and
//! a destination's `auth_method` (`{type, config}`), one schema per type, as
//! Hookdeck's SDK types them (`VerificationConfig`,
//! `DestinationAuthMethodConfig`; the 2023-07-01 reference only names them)
//! and hookgate reads them (`verify::VerificationConfig`,
//! `signing::destination_auth::AuthMethodConfig`, which check every body).
//!
//! `type` is matched in any case by the gateway; the schemas name the upper
//! and lower case spellings. Settings objects list every key the gateway
//! takes and refuse others, as the gateway does; hookgate's flat spelling
//! (the settings beside `type`) stays allowed by the outer objects.
//! Like `object_inputs`, these types only describe bodies in
//! `/openapi.json`: none is ever built.

use crate::signing::destination_auth::ApiKeyLocation;
use crate::signing::mac::{HmacAlgorithm, SignatureEncoding};
use serde::Deserialize;
use utoipa::ToSchema;

/// One `{type, <settings key>}` schema per type, and the `oneOf` of them.
macro_rules! typed_settings {
    (
        $(#[$outer:meta])*
        $input:ident, $key:ident {
            $( $(#[$doc:meta])* $variant:ident: $kind:ident [$upper:tt | $lower:tt] => $settings:ty, )*
        }
    ) => {
        $(#[$outer])*
        #[derive(Deserialize, ToSchema)]
        #[serde(untagged)]
        pub enum $input {
            $( $(#[$doc])* $variant($variant), )*
        }

        $(
            $(#[$doc])*
            #[derive(Deserialize, ToSchema)]
            pub struct $variant {
                #[serde(rename = "type")]
                pub kind: $kind,
                pub $key: Option<$settings>,
            }

            #[derive(Deserialize, ToSchema)]
            pub enum $kind {
                #[serde(rename = $upper)]
                Upper,
                #[serde(rename = $lower)]
                Lower,
            }
        )*
    };
}

typed_settings! {
    /// How the source checks its requests come from the provider, told
    /// apart by `type` (README, "Source verification").
    VerificationInput, configs {
        /// An HMAC of the raw body in a header of your choice.
        HmacVerification: HmacType ["HMAC" | "hmac"] => HmacConfigs,
        BasicAuthVerification: BasicAuthType ["BASIC_AUTH" | "basic_auth"] => CredentialsConfigs,
        ApiKeyVerification: ApiKeyType ["API_KEY" | "api_key"] => ApiKeyConfigs,
        StripeVerification: StripeType ["STRIPE" | "stripe"] => TimestampedConfigs,
        GithubVerification: GithubType ["GITHUB" | "github"] => SecretConfigs,
        ShopifyVerification: ShopifyType ["SHOPIFY" | "shopify"] => SecretConfigs,
        SlackVerification: SlackType ["SLACK" | "slack"] => TimestampedConfigs,
        /// The secret is the account's auth token.
        TwilioVerification: TwilioType ["TWILIO" | "twilio"] => SecretConfigs,
        SvixVerification: SvixType ["SVIX" | "svix"] => TimestampedConfigs,
        StandardWebhooksVerification: StandardWebhooksType ["STANDARD_WEBHOOKS" | "standard_webhooks"] => TimestampedConfigs,
        GitlabVerification: GitlabType ["GITLAB" | "gitlab"] => GitlabConfigs,
        /// Basic-auth credentials embedded in the webhook URL.
        PostmarkVerification: PostmarkType ["POSTMARK" | "postmark"] => CredentialsConfigs,
        /// Basic-auth credentials embedded in the webhook URL (the signed
        /// event webhook is not supported).
        SendgridVerification: SendgridType ["SENDGRID" | "sendgrid"] => CredentialsConfigs,
    }
}

/// `hmac`'s settings.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HmacConfigs {
    pub webhook_secret_key: String,
    /// The header holding the signature (a `sha256=`-style prefix is allowed).
    pub header_key: String,
    /// Defaults to `sha256`.
    pub algorithm: Option<HmacAlgorithm>,
    /// Defaults to `hex`.
    pub encoding: Option<SignatureEncoding>,
}

/// A user name and password (`Authorization: Basic …`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfigs {
    pub username: String,
    pub password: String,
}

/// A header that must hold the key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfigs {
    pub header_key: String,
    pub api_key: String,
}

/// A provider's signing secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretConfigs {
    pub webhook_secret_key: String,
}

/// A signing secret, for a signature over a timestamp.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimestampedConfigs {
    pub webhook_secret_key: String,
    /// hookgate's addition: how old a timestamp may be; defaults to 300.
    #[schema(minimum = 0)]
    pub tolerance_seconds: Option<u64>,
}

/// GitLab's secret token (`X-Gitlab-Token`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GitlabConfigs {
    pub api_key: String,
}

typed_settings! {
    /// How deliveries prove where they come from, told apart by `type`
    /// (README, "Destination auth"); without one, HOOKDECK_SIGNATURE.
    AuthMethodInput, config {
        /// Signed with the workspace's signing secret (`x-hookdeck-signature`).
        HookdeckSignatureAuth: HookdeckSignatureType ["HOOKDECK_SIGNATURE" | "hookdeck_signature"] => NoConfig,
        /// The same; hookgate's name.
        HookgateSignatureAuth: HookgateSignatureType ["HOOKGATE_SIGNATURE" | "hookgate_signature"] => NoConfig,
        CustomSignatureAuth: CustomSignatureType ["CUSTOM_SIGNATURE" | "custom_signature"] => CustomSignatureConfig,
        BasicAuthAuth: BasicAuthAuthType ["BASIC_AUTH" | "basic_auth"] => CredentialsConfigs,
        BearerTokenAuth: BearerTokenType ["BEARER_TOKEN" | "bearer_token"] => BearerTokenConfig,
        ApiKeyAuth: ApiKeyAuthType ["API_KEY" | "api_key"] => ApiKeyConfig,
    }
}

/// No settings.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// A header holding the hex HMAC-SHA256 of the body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomSignatureConfig {
    /// The header's name.
    pub key: String,
    pub signing_secret: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BearerTokenConfig {
    pub token: String,
}

/// A key sent in a header or the query.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The header's or query parameter's name.
    pub key: String,
    pub api_key: String,
    /// Defaults to `header`.
    pub to: Option<ApiKeyLocation>,
}
