//! Password checks for htpasswd lines (`{SHA}`, `$apr1$`, crypt(3)) and constant-time equality.
//!
//! lighttpd's mod_authn_file decides by prefix: `{SHA}` is base64 SHA-1 of the password,
//! `$apr1$` is Apache's MD5-crypt variant, and any other hash of at least 13 characters (a
//! DES crypt is 2 + 11) goes to the C library's crypt(3), which knows `$1$`, `$5$`, `$6$`,
//! bcrypt `$2y$` and friends as far as the platform does. Shorter strings never match.

use md5::{Digest, Md5};
use sha1::Sha1;

/// Equality whose running time depends on the lengths only, not on where the inputs differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keep the optimiser from turning the fold back into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

/// Does `pw` match the password field `hash` of an htpasswd line?
pub fn verify_htpasswd(hash: &[u8], pw: &[u8]) -> bool {
    if let Some(b64) = hash.strip_prefix(b"{SHA}") {
        let want = match super::base64::decode(b64, 20) {
            Some(d) if d.len() == 20 => d,
            _ => return false,
        };
        let got = Sha1::digest(pw);
        return ct_eq(&got, &want);
    }
    if let Some(rest) = hash.strip_prefix(APR1_MAGIC) {
        let got = md5_crypt(pw, rest, APR1_MAGIC);
        return ct_eq(got.as_bytes(), hash);
    }
    if hash.len() >= 13 {
        return crypt_matches(hash, pw);
    }
    false
}

const APR1_MAGIC: &[u8] = b"$apr1$";

/// The alphabet of crypt's base64 flavour ("./0-9A-Za-z", least significant digit first).
const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn push_crypt64(out: &mut String, mut v: u32, digits: usize) {
    for _ in 0..digits {
        out.push(char::from(CRYPT64[(v & 63) as usize]));
        v >>= 6;
    }
}

/// Poul-Henning Kamp's MD5-crypt with the given magic (`$apr1$` for Apache, `$1$` for the
/// FreeBSD/glibc original), written from the published algorithm. `salt_field` is whatever
/// follows the magic in the stored hash: the salt is its first 8 bytes up to any `$`.
/// Returns the complete hash string, `magic salt $ 22 digits`.
pub fn md5_crypt(pw: &[u8], salt_field: &[u8], magic: &[u8]) -> String {
    let salt_len = salt_field
        .iter()
        .take(8)
        .position(|&b| b == b'$')
        .unwrap_or(salt_field.len().min(8));
    let salt = salt_field.get(..salt_len).unwrap_or_default();

    let alternate = Md5::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();

    let mut ctx = Md5::new()
        .chain_update(pw)
        .chain_update(magic)
        .chain_update(salt);
    // One copy of the alternate sum per 16 bytes of password, the last one cut short.
    let mut left = pw.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(alternate.get(..n).unwrap_or_default());
        left -= n;
    }
    // The "something really weird" step: one byte per bit of the length, a NUL for a set
    // bit and the password's first byte for a clear one.
    let first = pw.first().copied().unwrap_or(0);
    let mut bits = pw.len();
    while bits != 0 {
        ctx.update([if bits & 1 != 0 { 0 } else { first }]);
        bits >>= 1;
    }
    let mut sum = ctx.finalize();

    // 1000 rounds to slow down dictionary attacks, mixing in password and salt by pattern.
    for round in 0..1000u32 {
        let mut c = Md5::new();
        if round & 1 != 0 {
            c.update(pw);
        } else {
            c.update(sum);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(pw);
        }
        if round & 1 != 0 {
            c.update(sum);
        } else {
            c.update(pw);
        }
        sum = c.finalize();
    }

    let mut out = String::with_capacity(magic.len() + salt.len() + 23);
    out.push_str(&String::from_utf8_lossy(magic));
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let b = |i: usize| u32::from(sum.get(i).copied().unwrap_or(0));
    // The output permutes the 16 bytes in groups of three, as the original did.
    for (x, y, z) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        push_crypt64(&mut out, (b(x) << 16) | (b(y) << 8) | b(z), 4);
    }
    push_crypt64(&mut out, b(11), 2);
    out
}

#[allow(unsafe_code)]
mod ffi {
    // crypt(3) is in libcrypt (libxcrypt) with glibc and in libc itself with musl.
    #[cfg_attr(all(target_os = "linux", target_env = "gnu"), link(name = "crypt"))]
    extern "C" {
        pub fn crypt(key: *const libc::c_char, salt: *const libc::c_char) -> *mut libc::c_char;
    }
}

/// Run the C library's crypt(3) on `pw` with `hash` as the setting and compare the result.
#[allow(unsafe_code)]
fn crypt_matches(hash: &[u8], pw: &[u8]) -> bool {
    // A NUL inside either string would silently shorten it for C; such a line or password
    // cannot be what the user meant, so it never matches.
    let (Ok(key), Ok(setting)) = (std::ffi::CString::new(pw), std::ffi::CString::new(hash)) else {
        return false;
    };
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    // crypt() returns NULL or a pointer to static storage that stays valid until the next
    // call; lightd is single-threaded and copies the result out before anything else can
    // call crypt(), which is why the non-reentrant crypt() is acceptable here.
    let out = unsafe {
        let p = ffi::crypt(key.as_ptr(), setting.as_ptr());
        if p.is_null() {
            return false;
        }
        std::ffi::CStr::from_ptr(p).to_bytes().to_vec()
    };
    // libxcrypt and others report failure with a "*0"/"*1" token rather than NULL.
    if out.first() == Some(&b'*') {
        return false;
    }
    ct_eq(&out, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_table() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"\x00bc", b"abc"));
    }

    // Expected values from `openssl passwd -apr1 -salt SALT PW` and `openssl passwd -1`.
    #[test]
    fn apr1_matches_openssl() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "apr-md5",
                "w2kLqmDN",
                "$apr1$w2kLqmDN$uMe8ZCfMRT81wf43Y1hny0",
            ),
            (
                "a password longer than sixteen bytes, really",
                "12345678",
                "$apr1$12345678$uiLfzYEouQzyL7edmUMqZ/",
            ),
            ("", "s", "$apr1$s$e2aCb9PLCjZ2t55SoAxXn."),
        ];
        for (pw, salt, want) in cases {
            assert_eq!(md5_crypt(pw.as_bytes(), salt.as_bytes(), APR1_MAGIC), *want);
            // The salt may be given as the whole stored remainder, as verify does.
            let rest = &want[APR1_MAGIC.len()..];
            assert_eq!(md5_crypt(pw.as_bytes(), rest.as_bytes(), APR1_MAGIC), *want);
        }
        assert_eq!(
            md5_crypt(b"pass", b"abc", b"$1$"),
            "$1$abc$iUbCWW89D2V9MXDEFGV8x0"
        );
    }

    #[test]
    fn htpasswd_schemes() {
        let good: &[(&str, &str)] = &[
            // lighttpd's tests/lighttpd.htpasswd entries.
            ("{SHA}2PRZAyDhNDqRW2OUFwZQqPNdaSY=", "sha"),
            ("$apr1$w2kLqmDN$uMe8ZCfMRT81wf43Y1hny0", "apr-md5"),
            // `printf secret | openssl dgst -sha1 -binary | base64`
            ("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secret"),
            // htpasswd -nbm / -nbB -C 4, openssl passwd -5/-6, perl crypt("secret","ab").
            ("$apr1$qfqiH4HR$q41C22SsAoqsL7jOPpQ9J0", "pw"),
            ("$1$abc$iUbCWW89D2V9MXDEFGV8x0", "pass"),
            (
                "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
                "secret",
            ),
            (
                "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
                "secret",
            ),
            ("abNANd1rDfiNc", "secret"),
        ];
        for (hash, pw) in good {
            assert!(
                verify_htpasswd(hash.as_bytes(), pw.as_bytes()),
                "{} {}",
                hash,
                pw
            );
            let mut wrong = pw.as_bytes().to_vec();
            wrong.push(b'x');
            assert!(!verify_htpasswd(hash.as_bytes(), &wrong), "{} wrong", hash);
            assert!(!verify_htpasswd(hash.as_bytes(), b""), "{} empty", hash);
        }
        let bcrypt = b"$2y$04$GBk32CtOvriOcYdJeVcfP.CtueSCGIuNxyDDyolM9oqgLf4e9K9BW";
        // bcrypt only where the platform's crypt() has it (glibc's libxcrypt does).
        if crypt_matches(bcrypt, b"pw") {
            assert!(!verify_htpasswd(bcrypt, b"pW"));
        }
        let bad: &[(&str, &str)] = &[
            // Too short for crypt: lighttpd never calls crypt() on these.
            ("plain", "plain"),
            ("", ""),
            ("{SHA}", ""),
            ("{SHA}2PRZAyDhNDqRW2OUFwZQqPNdaS", "sha"),
            ("{SHA}not base64 at all!!!!!!!!!", "sha"),
            ("$apr1$w2kLqmDN$uMe8ZCfMRT81wf43Y1hny", "apr-md5"),
            ("$apr1$w2kLqmDN$uMe8ZCfMRT81wf43Y1hny0x", "apr-md5"),
            // An invalid setting makes crypt fail ("*0"), never match.
            ("*0*0*0*0*0*0*0*0", "*0*0*0*0*0*0*0*0"),
            ("$9$nonsense$nonsense", "x"),
        ];
        for (hash, pw) in bad {
            assert!(
                !verify_htpasswd(hash.as_bytes(), pw.as_bytes()),
                "{:?}",
                hash
            );
        }
        // A NUL cannot reach crypt(): "secret\0junk" must not pass as "secret".
        assert!(!verify_htpasswd(b"abNANd1rDfiNc", b"secret\0junk"));
    }
}
