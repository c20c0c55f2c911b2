#!/usr/bin/python3
# dkim_cases.py DIR - keys, the lab's example.com zone and the signed test
# messages of test_dkim.sh, made fresh each run with dkimpy (python3-dkim):
#   DIR/example.com.zone   keys and DMARC/SPF records for Knot
#   DIR/cases/NAME.eml     one message per case (CRLF), signed as the case says
# Each message's Subject is "NAME-<tag>" so the test finds it at the downstream.
import base64
import os
import subprocess
import sys

import dkim
import nacl.signing

out = sys.argv[1]
tag = sys.argv[2] if len(sys.argv) > 2 else "t"
os.makedirs(out + "/cases", exist_ok=True)


def rsa_key(bits):
    pem = subprocess.run(["openssl", "genrsa", "-traditional", str(bits)], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"], input=pem, check=True,
                         capture_output=True).stdout
    return pem, base64.b64encode(der).decode()


rsa_priv, rsa_pub = rsa_key(2048)
ed = nacl.signing.SigningKey.generate()
ed_priv = base64.b64encode(bytes(ed))
ed_pub = base64.b64encode(bytes(ed.verify_key)).decode()


def txt(s):
    """a TXT rdata: strings of at most 255 bytes"""
    return " ".join('"%s"' % s[i:i + 250] for i in range(0, len(s), 250))


# a 16 kbit "key": the size of one, never decoded (dkim_max_key_bits refuses it)
big = base64.b64encode(os.urandom(2048 + 38)).decode()
zone = """$ORIGIN example.com.
$TTL 300
@       SOA ns.example.com. hostmaster.example.com. 1 60 30 604800 60
@       NS  ns
ns      A   198.18.2.2
_dmarc  TXT "v=DMARC1; p=none; sp=reject"
rsa._domainkey      TXT {rsa}
ed._domainkey       TXT {ed}
revoked._domainkey  TXT "v=DKIM1; k=rsa; p="
big._domainkey      TXT {big}
bad._domainkey      TXT "v=DKIM1; k=rsa; p=bm90IGEga2V5"
rej                 TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.rej          TXT "v=DMARC1; p=reject"
rsa._domainkey.rej  TXT {rsa}
_dmarc.quar         TXT "v=DMARC1; p=quarantine"
_dmarc.non          TXT "v=DMARC1; p=none"
_dmarc.strict       TXT "v=DMARC1; p=reject; adkim=s; aspf=s"
mail.strict         TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.relax        TXT "v=DMARC1; p=reject"
mail.relax          TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc.pct0         TXT "v=DMARC1; p=reject; pct=0"
""".format(rsa=txt("v=DKIM1; k=rsa; p=" + rsa_pub), ed=txt("v=DKIM1; k=ed25519; p=" + ed_pub),
           big=txt("v=DKIM1; k=rsa; p=" + big))
with open(out + "/example.com.zone", "w") as f:
    f.write(zone)

HDRS = [b"from", b"to", b"subject", b"date", b"message-id"]


def msg(name, frm="a@example.com", extra=b"", body=b"Hello,\r\n\r\nthis is the body.\r\n"):
    return (b"From: " + frm.encode() + b"\r\nTo: rcpt@moat.test\r\nSubject: " +
            ("%s-%s" % (name, tag)).encode() + b"\r\nDate: Sat, 05 Dec 2026 01:00:00 +0000\r\n"
            b"Message-ID: <" + name.encode() + b"." + tag.encode() + b"@example.com>\r\n" + extra +
            b"\r\n" + body)


def sign(m, sel=b"rsa", dom=b"example.com", canon=(b"relaxed", b"relaxed"), alg=b"rsa-sha256",
         length=False, key=None):
    if key is None:
        key = ed_priv if alg == b"ed25519-sha256" else rsa_priv
    sig = dkim.sign(m, sel, dom, key, canonicalize=canon, signature_algorithm=alg,
                    include_headers=HDRS, length=length)
    return sig + m


cases = {}
cases["rr"] = sign(msg("rr"))
cases["ss"] = sign(msg("ss"), canon=(b"simple", b"simple"))
cases["ed"] = sign(msg("ed"), sel=b"ed", alg=b"ed25519-sha256")
# two signatures, the outer one broken (its b= altered)
m = sign(msg("two"), sel=b"ed", alg=b"ed25519-sha256")
m = sign(m)
i = m.index(b" b=") + 3
m = m[:i + 10] + (b"A" if m[i + 10:i + 11] != b"A" else b"B") + m[i + 11:]
cases["two"] = m
cases["body"] = sign(msg("body")).replace(b"this is the body.", b"this is the b0dy.")
m = sign(msg("hdr"))
cases["hdr"] = m.replace(b"Subject: hdr-", b"Subject: hdr-changed-")
cases["len"] = sign(msg("len"), length=True) + b"appended text after l=\r\n"
cases["nokey"] = sign(msg("nokey"), sel=b"nokey")
cases["revoked"] = sign(msg("revoked"), sel=b"revoked")
cases["bigkey"] = sign(msg("bigkey"), sel=b"big")
cases["keytemp"] = sign(msg("keytemp"), dom=b"x.dead.test")
cases["badkey"] = sign(msg("badkey"), sel=b"bad")
cases["malformed"] = (b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; h=from; bh=%%%; b=???\r\n" +
                      msg("malformed"))
# 100 signatures: a good one first, then 99 that name keys nobody has
m = sign(msg("many"))
sig_end = m.index(b"\r\nFrom: ") + 2
good = m[:sig_end]
junk = b"".join(good.replace(b"s=rsa", b"s=n%d" % k) for k in range(99))
cases["many"] = good + junk + m[sig_end:]
# a 16 KB header field, folded, signed
big_field = b"X-Big: " + b"\r\n\t".join([b"x" * 76] * 210) + b"\r\n"
cases["bighdr"] = sign(msg("bighdr", extra=big_field))
# DMARC
cases["rej"] = msg("rej", frm="a@rej.example.com")
cases["rejspf"] = msg("rejspf", frm="a@rej.example.com")
cases["rejdkim"] = sign(msg("rejdkim", frm="a@rej.example.com"), dom=b"rej.example.com")
cases["quar"] = msg("quar", frm="a@quar.example.com")
cases["non"] = msg("non", frm="a@non.example.com")
cases["strict"] = msg("strict", frm="a@strict.example.com")
cases["relax"] = msg("relax", frm="a@relax.example.com")
cases["orgsp"] = msg("orgsp", frm="a@nosuch.example.com")
cases["temp"] = msg("temp", frm="a@x.dead.test")
cases["fwd"] = msg("fwd", frm="a@rej.example.com")
cases["forged"] = msg("forged", extra=b"Authentication-Results: mx.moat.test; dkim=pass header.d=example.com\r\n")
# pct=0: the policy applies to no failing message; the next one down does
cases["pct0"] = msg("pct0", frm="a@pct0.example.com")
# a second From field: the aligned, signed one hides a forged author
cases["twofrom"] = sign(msg("twofrom", extra=b"From: ceo@rej.example.com\r\n"))
# one From field, two mailboxes of one domain: that domain's policy
cases["boxes1"] = msg("boxes1", frm='"A, B" <a@rej.example.com>, b@Rej.Example.com')
# one From field, mailboxes of two domains: no single domain, permerror
cases["boxes2"] = msg("boxes2", frm="a@example.com, b@rej.example.com")
cases["marker"] = msg("marker", frm="a@pass.spf.test")
# tools/bench smtp: 10 KB, signed by the From domain (p=reject): DKIM and DMARC pass
cases["bench"] = sign(msg("bench", frm="a@rej.example.com", body=(b"x" * 78 + b"\r\n") * 128),
                      dom=b"rej.example.com")
for k, v in cases.items():
    with open("%s/cases/%s.eml" % (out, k), "wb") as f:
        f.write(v)
