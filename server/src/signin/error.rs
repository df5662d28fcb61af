//! Why a sign-in failed, in words the person can act on. The technical detail goes to the log only.

use axum::http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("identity provider unreachable: {0}")]
    ProviderUnreachable(String),
    #[error("no sign-in in progress for this browser (expired or already used)")]
    NoPendingSignIn,
    #[error("state parameter does not match any sign-in started by this browser")]
    StateMismatch,
    #[error("the password of the account has expired (AADSTS50055)")]
    PasswordExpired,
    #[error("identity provider refused the sign-in: {error} {description}")]
    ProviderRefused {
        error: String,
        aadsts: Option<u32>,
        description: String,
    },
    #[error("authorization code rejected: {error} {description}")]
    CodeRejected {
        error: String,
        aadsts: Option<u32>,
        description: String,
    },
    #[error("id_token failed verification: {0}")]
    TokenInvalid(TokenProblem),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What was wrong with an id_token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Missing,
    Signature,
    Audience,
    Issuer,
    Expired,
    Nonce,
    Claims,
    Malformed,
}

impl std::fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenProblem::Missing => "no identity token was returned",
            TokenProblem::Signature => {
                "its signature does not verify against Entra ID's published keys"
            }
            TokenProblem::Audience => "it was issued for another application",
            TokenProblem::Issuer => "it was issued by another tenant or authority",
            TokenProblem::Expired => "it has expired",
            TokenProblem::Nonce => "it does not belong to this sign-in (nonce mismatch)",
            TokenProblem::Claims => "it lacks the tenant and object ids that identify you",
            TokenProblem::Malformed => "it is malformed",
        })
    }
}

/// Extracts `50055` from `"AADSTS50055: The password is expired.\r\nTrace ID…"`.
pub fn aadsts_code(description: &str) -> Option<u32> {
    let rest = &description[description.find("AADSTS")? + 6..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

impl SignInError {
    pub fn status(&self) -> StatusCode {
        match self {
            SignInError::ProviderUnreachable(_) => StatusCode::BAD_GATEWAY,
            SignInError::NoPendingSignIn | SignInError::StateMismatch => StatusCode::BAD_REQUEST,
            SignInError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// A stable code for the page (and for tests).
    pub fn code(&self) -> &'static str {
        match self {
            SignInError::ProviderUnreachable(_) => "provider_unreachable",
            SignInError::NoPendingSignIn => "no_pending_sign_in",
            SignInError::StateMismatch => "state_mismatch",
            SignInError::PasswordExpired => "password_expired",
            SignInError::ProviderRefused { .. } => "provider_refused",
            SignInError::CodeRejected {
                aadsts: Some(501481),
                ..
            } => "pkce_mismatch",
            SignInError::CodeRejected { .. } => "code_rejected",
            SignInError::TokenInvalid(_) => "token_invalid",
            SignInError::Internal(_) => "internal",
        }
    }

    /// Headline and advice for the person.
    pub fn explain(&self) -> (&'static str, String) {
        match self {
            SignInError::ProviderUnreachable(_) => (
                "Microsoft Entra ID could not be reached",
                "cosell could not talk to Microsoft Entra ID to sign you in. Try again in a minute; if it keeps happening, ask your administrator to check that the server can reach the sign-in service.".into(),
            ),
            SignInError::NoPendingSignIn => (
                "This sign-in has expired",
                "The sign-in took too long, was already completed, or was started in another browser. Start again.".into(),
            ),
            SignInError::StateMismatch => (
                "This sign-in did not start here",
                "The answer from Microsoft Entra ID does not match the sign-in this browser started (state mismatch), so it was refused. This happens when a sign-in link is reused or opened in another browser, or when someone tries to sign you in to their account. Start again.".into(),
            ),
            SignInError::PasswordExpired => (
                "Your password has expired",
                "Microsoft Entra ID says the password of this account has expired (AADSTS50055). Change it at https://aka.ms/sspr or ask your IT administrator, then sign in again.".into(),
            ),
            SignInError::ProviderRefused { error, aadsts, .. } => (
                "Microsoft Entra ID refused the sign-in",
                match (error.as_str(), aadsts) {
                    ("access_denied", _) => "The sign-in was cancelled or access was denied. Start again, or ask your administrator to check that you may use cosell.".into(),
                    (_, Some(65001)) => "cosell's app registration has not been granted consent in your tenant (AADSTS65001). An administrator must grant consent, then sign in again.".into(),
                    (_, Some(code)) => format!("Entra ID answered {error} (AADSTS{code}). Look the code up at https://login.microsoftonline.com/error?code={code}, or give it to your administrator."),
                    _ => format!("Entra ID answered {error}. Start again, or give this to your administrator."),
                },
            ),
            SignInError::CodeRejected { aadsts: Some(501481), .. } => (
                "The sign-in could not be completed",
                "Microsoft Entra ID refused to complete the sign-in because the proof key (PKCE) did not match the one this browser's sign-in was started with (AADSTS501481). The answer was probably meant for another sign-in. Start again.".into(),
            ),
            SignInError::CodeRejected { error, aadsts, .. } => (
                "The sign-in could not be completed",
                match aadsts {
                    Some(54005) => "This sign-in answer was already used (AADSTS54005). Start again.".into(),
                    Some(70008) => "This sign-in took too long and its code expired (AADSTS70008). Start again.".into(),
                    Some(code) if error == "invalid_client" => format!("cosell's client secret was refused by Entra ID (AADSTS{code}). An administrator must renew it (COSELL_OIDC_CLIENT_SECRET)."),
                    Some(code) => format!("Entra ID answered {error} (AADSTS{code}). Start again; if it keeps happening, give the code to your administrator."),
                    None => format!("Entra ID answered {error}. Start again."),
                },
            ),
            SignInError::TokenInvalid(problem) => (
                "The identity token was not accepted",
                format!("cosell checked the identity token from Microsoft Entra ID and refused it: {problem}. You have not been signed in. Start again; if it keeps happening, tell your administrator."),
            ),
            SignInError::Internal(_) => (
                "Something went wrong on our side",
                "The error has been logged. Try again in a moment.".into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_aadsts_codes() {
        assert_eq!(
            aadsts_code("AADSTS50055: The password is expired.\r\nTrace ID: x"),
            Some(50055)
        );
        assert_eq!(
            aadsts_code("AADSTS501481: The Code_Verifier does not match"),
            Some(501481)
        );
        assert_eq!(aadsts_code("the user canceled"), None);
        assert_eq!(aadsts_code("AADSTS: nothing"), None);
    }

    #[test]
    fn pkce_mismatch_has_its_own_code() {
        let e = SignInError::CodeRejected {
            error: "invalid_grant".into(),
            aadsts: Some(501481),
            description: String::new(),
        };
        assert_eq!(e.code(), "pkce_mismatch");
        assert!(e.explain().1.contains("PKCE"));
    }
}
