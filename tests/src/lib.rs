//! Shared test support: paths of the built artifacts and local fakes of the
//! remote providers (HTTPS token endpoint, SMTP relay). Only the providers
//! are faked; everything we ship runs for real.

pub mod bins;
pub mod postfix;
pub mod provider;
pub mod sasl;
pub mod smtp;
