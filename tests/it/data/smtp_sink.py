"""A local SMTP server for the alert tests (aiosmtpd): it keeps every message
it receives as <out>/<n>.eml and logs each login to <out>/logins.txt.

usage: smtp_sink.py PORT OUT_DIR MODE [CERT KEY USER PASSWORD]
MODE is plain, starttls (STARTTLS required before AUTH and MAIL) or tls
(implicit TLS). Prints "ready" once it accepts connections.
"""

import logging
import os
import ssl
import sys
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.out, "%d.eml" % self.count)
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        return "250 OK"


def main():
    # The implicit-TLS server requires AUTH on a socket it cannot see is TLS;
    # its warnings about that are noise here.
    warnings.filterwarnings("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    port, out, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    kwargs = {}
    if mode in ("starttls", "tls"):
        cert, key, user, password = sys.argv[4:8]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            with open(os.path.join(out, "logins.txt"), "a") as f:
                f.write("%s %s\n" % (mechanism, "ok" if ok else "refused"))
            return AuthResult(success=ok)

        kwargs.update(authenticator=authenticator, auth_required=True)
        if mode == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        else:
            # The server cannot see a wrapped socket as TLS; it is, from the first byte.
            kwargs.update(ssl_context=context, auth_require_tls=False)
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
