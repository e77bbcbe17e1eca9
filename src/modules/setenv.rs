//! mod_setenv: headers added to or set on the response (the response-start phase). Request
//! headers and environment variables are read where they are used (the access log, and the
//! backends that get an environment).

use crate::config::ReqConf;
use crate::http::response;

/// Apply `setenv.add-response-header` (appended) and `setenv.set-response-header` (replacing;
/// an empty value removes the header) to a response's header list.
pub fn response_headers(conf: &ReqConf, hdrs: &mut Vec<u8>) {
    for (k, v) in &conf.setenv.add_response_header {
        response::header(hdrs, k, v.as_bytes());
    }
    for (k, v) in &conf.setenv.set_response_header {
        if v.is_empty() {
            response::remove(hdrs, k);
        } else {
            response::set(hdrs, k, v.as_bytes());
        }
    }
}

/// The request's fields as mod_setenv leaves them for a backend: `set-request-header`
/// replaces (an empty value removes), `add-request-header` appends. `fields` holds the
/// request's own (name, value) pairs in order.
pub fn request_fields<'a>(conf: &'a ReqConf, fields: &mut Vec<(&'a [u8], &'a [u8])>) {
    for (k, v) in &conf.setenv.set_request_header {
        fields.retain(|(n, _)| !n.eq_ignore_ascii_case(k.as_bytes()));
        if !v.is_empty() {
            fields.push((k.as_bytes(), v.as_bytes()));
        }
    }
    for (k, v) in &conf.setenv.add_request_header {
        fields.push((k.as_bytes(), v.as_bytes()));
    }
}
