"""Everyday traffic, one 10-minute bin at a time: mail in and out, POP3 logins, the DNS queries of
the PCs and other hosts, and the other programs' lines on both servers.

Volumes follow a working day in local time (rise at 9:00, lunch dip, afternoon plateau, dial-up
POP peak 20:00-23:00, quiet nights, lighter weekends); `scale` multiplies every volume.
"""

from __future__ import annotations

import math
from base64 import b64encode

from mmw_tasks.simulate.render import K_DQ, K_OTHER, K_POP
from mmw_tasks.simulate.site import (
    LOCAL_DOMAIN,
    MX_FQDN,
    MX_IP,
    NS_IP,
    WWW_IP,
    WWW_NAME,
    dialup_host,
    in_addr,
    pc_name,
)

# hourly weights, local time, 0h..23h
OFFICE = (1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 4, 9, 11, 11, 6, 10, 11, 11, 10, 9, 7, 5.5, 4.5, 3.5, 3, 2)
INBOUND = (
    2.2,
    1.6,
    1.2,
    1,
    1,
    1.1,
    1.6,
    2.6,
    5,
    9,
    10.5,
    10.5,
    6.5,
    9.5,
    10.5,
    10.5,
    9.5,
    8.5,
    6.5,
    5,
    4.2,
    3.4,
    3,
    2.6,
)
CAMPUS_POP = (0.5, 0.3, 0.2, 0.1, 0.1, 0.2, 0.5, 1.5, 5, 10, 11, 11, 7, 10, 11, 11, 10, 9, 6, 4, 3, 2.5, 2, 1)
DIALUP_POP = (3, 1.5, 0.8, 0.4, 0.3, 0.3, 0.5, 1.5, 2, 1.2, 1, 1, 1.5, 1, 1, 1, 1, 1.5, 3, 5, 9, 11, 10, 7)
OFFICE_WE = (1.5, 1, 0.6, 0.4, 0.4, 0.4, 0.6, 1, 2, 3.5, 4.5, 5, 4.5, 5, 5, 5, 4.5, 4, 3.5, 3, 3, 2.5, 2, 1.8)
DIALUP_WE = (3, 1.5, 0.8, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 4, 5, 5, 5, 5, 5, 5, 5, 5.5, 6, 7, 9, 10, 9, 6)
FLAT = (1,) * 24

# weekday daily volumes at scale 1: (profile, weekend profile, saturday factor, sunday factor)
CLASSES = {
    "inbound": (2000, INBOUND, INBOUND, 0.7, 0.6),
    "outbound": (2250, OFFICE, OFFICE_WE, 0.45, 0.3),
    "local": (420, OFFICE, OFFICE_WE, 0.45, 0.3),
    "spam_runs": (6, FLAT, FLAT, 1.0, 1.0),
    "pop_campus": (1900, CAMPUS_POP, OFFICE_WE, 0.35, 0.2),
    "pop_dialup": (1400, DIALUP_POP, DIALUP_WE, 1.15, 1.2),
    "pc_dns": (90000, OFFICE, OFFICE_WE, 0.45, 0.3),
    "www_dns": (6000, INBOUND, INBOUND, 0.8, 0.8),
    "netbios": (2500, OFFICE, OFFICE_WE, 0.45, 0.3),
    "mx_extra_dns": (200, FLAT, FLAT, 1.0, 1.0),
    "ns_noise": (12, FLAT, FLAT, 1.0, 1.0),
    "mx_noise": (20, FLAT, FLAT, 1.0, 1.0),
}
IPLOG = "iplog[312]"
# a holiday: the campus is closed (its own mail almost stops); the outside world still writes
HOLIDAY = {
    "inbound": 0.5,
    "outbound": 0.2,
    "local": 0.15,
    "pop_campus": 0.1,
    "pop_dialup": 0.6,
    "pc_dns": 0.15,
    "netbios": 0.15,
}


def bin_weights(hourly: tuple) -> list[float]:
    """144 ten-minute shares of a day, linearly interpolated between hour centres, summing to 1."""
    w = []
    for b in range(144):
        x = (b * 10 + 5) / 60 - 0.5
        i = math.floor(x)
        f = x - i
        w.append(hourly[i % 24] * (1 - f) + hourly[(i + 1) % 24] * f)
    s = sum(w)
    return [v / s for v in w]


def poisson(rng, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam < 30:
        limit, k, p = math.exp(-lam), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))


class Background:
    def __init__(self, sim):
        self.sim = sim
        site = sim.site
        self.weights = {name: (bin_weights(wd), bin_weights(we)) for name, (_, wd, we, _, _) in CLASSES.items()}
        self.users = site.users[:400]
        self.dial_users = [u for u in self.users if u.dialup >= 0]
        self.pc_names = {ip: pc_name(ip) for ip in site.pcs}
        self.pc_src = [f"{self.pc_names[ip]} ({ip})" if k == 0 else ip for ip in site.pcs for k in range(10)]
        self.pcs = site.pcs
        # names the PCs and the web server look up (the modern stack's BIND logs them)
        self.qnames = (
            [f"www.{d.name}" for d in site.domains[:150]]
            + [d.name for d in site.domains[:60]]
            + [f"{h}.{LOCAL_DOMAIN}" for h in ("www", "ns", "mx", "proxy", "lib", "portal")]
        )
        self.day_lambda: dict[str, list[float]] = {}

    def start_day(self, weekday: int, holiday: bool = False) -> None:
        """Expected counts per bin for the day (weekday: 0 = Monday). A holiday is a Sunday with
        the campus closed: its own mail and lookups at a fraction (HOLIDAY) of a Sunday's."""
        rng = self.sim.rng
        self.day_lambda = {}
        if holiday:
            weekday = 6
        for name, (total, _, _, sat, sun) in CLASSES.items():
            f = sat if weekday == 5 else sun if weekday == 6 else 1.0
            f *= max(0.5, rng.gauss(1.0, 0.04)) * self.sim.scale
            if holiday:
                f *= HOLIDAY.get(name, 1.0)
            w = self.weights[name][1 if weekday >= 5 else 0]
            self.day_lambda[name] = [total * f * x for x in w]

    def run_bin(self, b: int, t0: float) -> None:
        sim = self.sim
        rng = sim.rng
        rnd = rng.random
        lam = self.day_lambda
        for name, gen in (
            ("inbound", self.inbound),
            ("outbound", self.outbound),
            ("local", self.local),
            ("spam_runs", self.spam_run),
            ("pop_campus", self.pop_campus),
            ("pop_dialup", self.pop_dialup),
            ("ns_noise", self.noise_ns),
            ("mx_noise", self.noise_mx),
        ):
            for _ in range(poisson(rng, lam[name][b])):
                gen(t0 + 600 * rnd())
        self.dns_noise(b, t0)
        for _ in range(poisson(rng, lam["mx_extra_dns"][b])):  # the mail server's own lookups
            sim.query(t0 + 600 * rnd(), f"{rng.choice(sim.site.domains).name}")

    # -- mail --------------------------------------------------------------------------------
    def _remote_addr(self):
        site = self.sim.site
        lp, di = site.correspondents[int(self.sim.rng.random() * len(site.correspondents))]
        return f"{lp}@{site.domains[di].name}", di

    def inbound(self, t: float, sender: tuple[str, int] | None = None) -> str:
        """One message from outside for local users; `sender` (address, domain index) instead of
        a correspondent drawn at random. Returns the sending server's IP."""
        sim = self.sim
        rnd = sim.rng.random
        site = sim.site
        addr, di = sender or self._remote_addr()
        dom = site.domains[di]
        h = int(rnd() * dom.n)
        host, ip = dom.hosts[h], dom.ips[h]
        relay = f"{host} [{ip}]" if dom.ptr else f"[{ip}]"
        if dom.ptr and rnd() < 0.02:
            relay += " (may be forged)"
        sender = "" if rnd() < 0.03 else addr
        k = 1 if rnd() < 0.85 else 2 + int(rnd() * 3)
        local, unknown = [], []
        for _ in range(k):
            if rnd() < 0.012:
                unknown.append(f"{self.users[int(rnd() * 400)].name}x@{LOCAL_DOMAIN}")
            else:
                name = self.users[int(rnd() * len(self.users))].name
                if name not in local:
                    local.append(name)
        size = 600 + int(sim.rng.lognormvariate(8.0, 1.0))
        msgid = f"<{sim.ymdhms(t)}.{int(rnd() * 0xFFFFF):05X}@{host}>"
        sim.mailer.message(
            t,
            relay,
            ip,
            host if dom.ptr else None,
            sender,
            size,
            msgid,
            "ESMTP" if rnd() < 0.85 else "SMTP",
            local=tuple(local),
            unknown=tuple(unknown),
        )
        return ip

    def _client(self, u):
        rnd = self.sim.rng.random
        if u.dialup >= 0 and rnd() < 0.07:  # POP-before-SMTP from home
            name, ip = dialup_host(u.dialup, int(rnd() * 65536))
            return name, ip
        return self.pc_names[u.pc], u.pc

    def _msgid(self, t, u, name, ip) -> str:
        rnd = self.sim.rng.random
        if ip.endswith(("1", "3", "5", "7")):  # Outlook Express: <000a01c1b6c4$5d1f3e40$4d03010a@pc77>
            a, b, c = int(rnd() * 0xFF), int(rnd() * 0xFFFF), int(rnd() * 0xFFFFFFFF)
            iphex = "".join(f"{int(x):02x}" for x in reversed(ip.split(".")))
            return f"<00{a:02x}01c1{b:04x}${c:08x}${iphex}@{name.split('.', 1)[0]}>"
        return f"<{self.sim.ymdhms(t)}.{int(rnd() * 0xFFFF):04X}.{u.name}@{LOCAL_DOMAIN}>"

    def outbound(self, t: float) -> None:
        sim = self.sim
        rnd = sim.rng.random
        u = self.users[int(rnd() * len(self.users))]
        name, ip = self._client(u)
        r = rnd()
        k = 1 if r < 0.72 else 2 if r < 0.88 else 3 if r < 0.94 else 4 + int(rnd() * 5)
        local: list[str] = []
        remote: dict[str, int] = {}
        for _ in range(k):
            if rnd() < 0.88:
                addr, di = self._remote_addr()
                remote[addr] = di
            else:
                n = self.users[int(rnd() * len(self.users))].name
                if n not in local:
                    local.append(n)
        size = 500 + int(sim.rng.lognormvariate(8.3, 1.1))
        sim.mailer.message(
            t,
            f"{name} [{ip}]",
            ip,
            name,
            f"{u.name}@{LOCAL_DOMAIN}",
            min(size, 9_000_000),
            self._msgid(t, u, name, ip),
            "SMTP" if ip.endswith("0") else "ESMTP",
            local=tuple(local),
            remote=tuple(remote.items()),
        )

    def local(self, t: float) -> None:
        sim = self.sim
        rnd = sim.rng.random
        u = self.users[int(rnd() * len(self.users))]
        name, ip = self._client(u)
        rcpts = list(
            dict.fromkeys(self.users[int(rnd() * len(self.users))].name for _ in range(1 + int(rnd() * rnd() * 4)))
        )
        size = 500 + int(sim.rng.lognormvariate(8.0, 1.0))
        sim.mailer.message(
            t,
            f"{name} [{ip}]",
            ip,
            name,
            f"{u.name}@{LOCAL_DOMAIN}",
            size,
            self._msgid(t, u, name, ip),
            "ESMTP",
            local=tuple(rcpts),
        )

    def spam_run(self, t: float) -> None:
        """A spammer guessing local addresses: mostly `User unknown`, sometimes nrcpts=0."""
        sim = self.sim
        rng = sim.rng
        ip = f"100.80.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        guesses = tuple(
            f"{rng.choice(('info', 'sales', 'admin', 'office', 'support', 'contact'))}"
            f"{rng.randrange(100) if rng.random() < 0.5 else ''}@{LOCAL_DOMAIN}"
            for _ in range(rng.randrange(3, 15))
        )
        local = tuple(u.name for u in rng.sample(self.users, rng.randrange(0, 3)))
        dom = rng.choice(sim.site.domains).name
        sender = f"{rng.choice(('deals', 'offer', 'news'))}{rng.randrange(10000)}@{dom}"
        sim.mailer.message(
            t,
            f"[{ip}]",
            ip,
            None,
            sender,
            2000 + rng.randrange(3000),
            None,
            "SMTP",
            local=local,
            unknown=tuple(dict.fromkeys(guesses)),
        )

    # -- POP3 ----------------------------------------------------------------------------------
    def _pop(self, t: float, user: str, host: str, ip: str) -> None:
        sim = self.sim
        rnd = sim.rng.random
        # qpopper's reverse lookup of the client (Dovecot's, with login_access_sockets = tcpwrap)
        sim.query(t - 2 * rnd(), in_addr(ip))
        pid = sim.mx_pid(t)
        if sim.style.pop == "dovecot":
            self._dovecot(t, pid, user, ip)
            return
        if rnd() < 0.015:
            sim.mx.append((t, K_OTHER, f'popper[{pid}]: -ERR [AUTH] Password supplied for "{user}" is incorrect.'))
            sim.mx.append((t + 0.5, K_OTHER, f"popper[{pid}]: {user} at {host} ({ip}): -ERR POP EOF or I/O Error"))
            return
        sim.mx.append((t, K_POP, f'popper[{pid}]: (v4.0.5) POP login by user "{user}" at ({host}) {ip}'))
        left = int(rnd() * 40)
        dele = int(rnd() * 4) if rnd() < 0.4 else 0
        kept = left * 5127 + int(rnd() * 999)
        sim.mx.append(
            (
                t + 0.3 + 25 * rnd(),
                K_OTHER,
                f"popper[{pid}]: Stats: {user} {dele} {dele * 4321} {left} {kept} {host} {ip}",
            )
        )

    def _dovecot(self, t: float, mpid: int, user: str, ip: str) -> None:
        rnd = self.sim.rng.random
        mx = self.sim.mx
        session = b64encode(int(rnd() * 2**48).to_bytes(6, "big") + int(rnd() * 2**48).to_bytes(6, "big")).decode()
        if rnd() < 0.015:
            mx.append(
                (
                    t,
                    K_OTHER,
                    f"dovecot: auth-worker({mpid + 1}): pam({user},{ip},<{session}>): "
                    "pam_authenticate() failed: Authentication failure (password mismatch?)",
                )
            )
            mx.append(
                (
                    t + 2.1,
                    K_OTHER,
                    f"dovecot: pop3-login: Disconnected (auth failed, 1 attempts in 2 secs): "
                    f"user=<{user}>, method=PLAIN, rip={ip}, lip={MX_IP}, session=<{session}>",
                )
            )
            return
        mx.append(
            (
                t,
                K_POP,
                f"dovecot: pop3-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip={MX_IP}, "
                f"mpid={mpid}, session=<{session}>",
            )
        )
        left = int(rnd() * 40)
        dele = int(rnd() * 4) if rnd() < 0.4 else 0
        kept = left * 5127 + int(rnd() * 999)
        mx.append(
            (
                t + 0.3 + 25 * rnd(),
                K_OTHER,
                f"dovecot: pop3({user})<{mpid}><{session}>: Disconnected: Logged out top=0/0, "
                f"retr={dele}/{dele * 4321}, del={dele}/{left + dele}, size={kept + dele * 4321}",
            )
        )

    def pop_campus(self, t: float) -> None:
        u = self.users[int(self.sim.rng.random() * len(self.users))]
        self._pop(t, u.name, self.pc_names[u.pc], u.pc)

    def pop_dialup(self, t: float) -> None:
        rnd = self.sim.rng.random
        u = self.dial_users[int(rnd() * len(self.dial_users))]
        name, ip = dialup_host(u.dialup, int(rnd() * 65536))
        self._pop(t, u.name, name if rnd() > 0.1 else ip, ip)

    # -- the DNS server's other lines ----------------------------------------------------------
    def dns_noise(self, b: int, t0: float) -> None:
        if self.sim.style.dns == "bind":
            self._bind_noise(b, t0)
            return
        sim = self.sim
        rng = sim.rng
        rnd = rng.random
        ns = sim.ns
        app = ns.append
        lam = self.day_lambda
        pcs = self.pc_src
        npc = len(pcs)
        rep = sim.style.repeats
        for _ in range(poisson(rng, lam["pc_dns"][b])):
            src = pcs[int(rnd() * npc)]  # each PC ten times, once in iplog's resolved form
            v = int(rnd() * 119280)  # source port and query size from one draw
            body = f"{IPLOG}: UDP: dgram to domain from {src}:{1025 + v // 30} ({28 + v % 30} data bytes)"
            if rep and v < 1200:
                app((t0 + 600 * rnd(), K_OTHER, body, 1 + (v & 1), 1 + 4 * rnd()))
            else:
                app((t0 + 600 * rnd(), K_OTHER, body))
        for _ in range(poisson(rng, lam["www_dns"][b])):  # 10.1.0.250: 10.1.0.25 is a prefix of it
            src = f"{WWW_NAME} ({WWW_IP})" if rnd() < 0.1 else WWW_IP
            v = int(rnd() * 99400)
            app(
                (
                    t0 + 600 * rnd(),
                    K_OTHER,
                    f"{IPLOG}: UDP: dgram to domain from {src}:{1024 + v // 25} ({30 + v % 25} data bytes)",
                )
            )
        for _ in range(poisson(rng, lam["netbios"][b])):
            ip = self.pcs[int(rnd() * len(self.pcs))]
            body = f"{IPLOG}: UDP: dgram to netbios-ns from {ip}:137 (50 data bytes)"
            if rep and rnd() < 0.3:
                app((t0 + 600 * rnd(), K_OTHER, body, 2, 1.5 + rnd()))
            else:
                app((t0 + 600 * rnd(), K_OTHER, body))
        if rnd() < 0.02:
            app(
                (
                    t0 + 600 * rnd(),
                    K_OTHER,
                    f"{IPLOG}: TCP: port scan detected [ports 21,22,23,25,53,80,110,111,139,143] from "
                    f"203.0.113.{rng.randrange(1, 255)} [port {rng.randrange(1024, 5000)}]",
                )
            )
        if rnd() < 0.05:  # a truncated answer retried over TCP: from the mail server, but not a UDP query
            app(
                (
                    t0 + 600 * rnd(),
                    K_OTHER,
                    f"{IPLOG}: TCP: domain connection attempt from {MX_IP}:{rng.randrange(32768, 65535)}",
                )
            )
        if rnd() < 0.02:
            app(
                (
                    t0 + 600 * rnd(),
                    K_OTHER,
                    f"{IPLOG}: TCP: smtp connection attempt from {MX_FQDN} ({MX_IP}):{rng.randrange(32768, 65535)}",
                )
            )

    def _bind_noise(self, b: int, t0: float) -> None:
        """The other clients' queries as BIND logs them, and the queries it refuses."""
        sim = self.sim
        rng = sim.rng
        rnd = rng.random
        app = sim.ns.append
        lam = self.day_lambda
        pcs, names = self.pcs, self.qnames
        npc, nn = len(pcs), len(names)
        for n_q, src in ((poisson(rng, lam["pc_dns"][b]), None), (poisson(rng, lam["www_dns"][b]), WWW_IP)):
            for _ in range(n_q):
                v = int(rnd() * 0xFFFFFF)
                ip = src or pcs[v % npc]
                q = names[(v >> 9) % nn]
                qt = "AAAA" if v & 3 == 0 else "A"
                app(
                    (
                        t0 + 600 * rnd(),
                        K_OTHER,
                        f"named[704]: client @0x7f3c{v * 16:08x} {ip}#{32768 + (v >> 4) % 28000} ({q}): "
                        f"query: {q} IN {qt} +E(0)K ({NS_IP})",
                    )
                )
        if rnd() < 0.05:  # a scanner asks for the version: refused, not a query of ours
            ip = f"203.0.113.{rng.randrange(1, 255)}"
            app(
                (
                    t0 + 600 * rnd(),
                    K_OTHER,
                    f"named[704]: client @0x7f3c{rng.randrange(1 << 24) * 16:08x} "
                    f"{ip}#{rng.randrange(1024, 65535)} (version.bind): query (cache) "
                    "'version.bind/TXT/CH' denied",
                )
            )
        if rnd() < 0.05:  # a truncated answer retried over TCP: a query of the mail server, flag T
            q = names[int(rnd() * nn)]
            app(
                (
                    t0 + 600 * rnd(),
                    K_DQ,
                    f"named[704]: client @0x7f3c{rng.randrange(1 << 24) * 16:08x} "
                    f"{MX_IP}#{rng.randrange(32768, 60999)} ({q}): query: {q} IN TXT +T "
                    f"({NS_IP})",
                )
            )

    # -- other programs ------------------------------------------------------------------------
    def noise_ns(self, t: float) -> None:
        sim = self.sim
        rng = sim.rng
        r = rng.random()
        pid = rng.randrange(1000, 32000)
        if r < 0.5:
            sim.ns.append(
                (
                    t,
                    K_OTHER,
                    f"sshd[{pid}]: Accepted password for root from 10.1.2.20 port {rng.randrange(600, 1023)} ssh2",
                )
            )
            sim.ns.append((t + 0.1, K_OTHER, f"sshd(pam_unix)[{pid}]: session opened for user root by (uid=0)"))
            sim.ns.append(
                (t + 60 + 900 * rng.random(), K_OTHER, f"sshd(pam_unix)[{pid}]: session closed for user root")
            )
        elif r < 0.8:
            sim.ns.append(
                (
                    t,
                    K_OTHER,
                    f"sshd[{pid}]: Did not receive identification string from 203.0.113.{rng.randrange(1, 255)}",
                )
            )
        else:
            sim.ns.append((t, K_OTHER, "kernel: NETDEV WATCHDOG: eth0: transmit timed out"))
            sim.ns.append((t + 0.01, K_OTHER, "kernel: eth0: Tx timed out, lost interrupt?"))

    def noise_mx(self, t: float) -> None:
        sim = self.sim
        rng = sim.rng
        r = rng.random()
        if sim.style.mta == "postfix":
            self._postfix_noise(t, r)
            return
        tag = sim.style.sendmail_tag
        if r < 0.35:  # a client connects and leaves: the access still costs its 2 queries
            if rng.random() < 0.5:
                ip = rng.choice(sim.site.pcs)
                name = pc_name(ip)
                relay = f"{name} [{ip}]"
            else:
                ip, name = f"100.81.{rng.randrange(256)}.{rng.randrange(1, 255)}", None
                relay = f"[{ip}]"
            sim.query(t - 2 * rng.random(), in_addr(ip))
            sim.query(t - 2 * rng.random(), name or in_addr(ip))
            pid = sim.mx_pid(t)
            what = (
                f"{relay} did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA"
                if rng.random() < 0.7
                else f"lost input channel from {relay} to MTA after rcpt"
            )
            sim.mx.append((t, K_OTHER, f"{tag}[{pid}]: {sim.mailer.qid(t, pid)}: {what}"))
        elif r < 0.6:
            pid = rng.randrange(1000, 30000)
            sim.mx.append(
                (
                    t,
                    K_OTHER,
                    f"sshd[{pid}]: Accepted password for admin from 10.1.2.20 port {rng.randrange(600, 1023)} ssh2",
                )
            )
        elif r < 0.8:
            sim.mx.append(
                (t, K_OTHER, f"xntpd[212]: time reset ({'+' if rng.random() < 0.5 else '-'}{rng.random() * 0.3:.6f} s)")
            )
        elif r < 0.9 and sim.style.repeats:
            sim.mx.append(
                (
                    t,
                    K_OTHER,
                    "unix: NOTICE: alloc: /var/mail: file system full",
                    rng.randrange(2, 9),
                    20 + 200 * rng.random(),
                )
            )
        else:
            sim.mx.append((t, K_OTHER, "inetd[142]: pop3/tcp: connection from 198.51.100.7 refused"))

    def _postfix_noise(self, t: float, r: float) -> None:
        """mail.log's other lines: sessions that send nothing (their 2 lookups still count in Dq),
        anvil statistics, POP connections that never log in."""
        sim = self.sim
        rng = sim.rng
        mx = sim.mx
        if r < 0.35:
            if rng.random() < 0.5:
                ip = rng.choice(sim.site.pcs)
                name = pc_name(ip)
            else:
                ip, name = f"100.81.{rng.randrange(256)}.{rng.randrange(1, 255)}", None
            client = f"{name or 'unknown'}[{ip}]"
            sim.query(t + 0.05 * rng.random(), in_addr(ip), "PTR")
            sim.query(t + 0.1 * rng.random(), name or in_addr(ip), "A" if name else "PTR")
            pid = sim.mx_pid(t)
            mx.append((t, K_OTHER, f"postfix/smtpd[{pid}]: connect from {client}"))
            if rng.random() < 0.7:
                mx.append((t + 0.5, K_OTHER, f"postfix/smtpd[{pid}]: lost connection after CONNECT from {client}"))
                mx.append((t + 0.51, K_OTHER, f"postfix/smtpd[{pid}]: disconnect from {client} commands=0/0"))
            else:
                mx.append(
                    (t + 2.0, K_OTHER, f"postfix/smtpd[{pid}]: disconnect from {client} ehlo=1 quit=1 commands=2")
                )
        elif r < 0.6:
            mx.append(
                (
                    t,
                    K_OTHER,
                    f"postfix/anvil[{rng.randrange(1000, 30000)}]: statistics: max connection rate "
                    f"{rng.randrange(2, 9)}/60s for (smtp:{rng.choice(sim.site.pcs)}) at "
                    f"{sim.style.stamp(t)[:19]}",
                )
            )
        else:
            ip = rng.choice(sim.site.pcs)
            mx.append(
                (
                    t,
                    K_OTHER,
                    f"dovecot: pop3-login: Disconnected (no auth attempts in 0 secs): user=<>, "
                    f"rip={ip}, lip={MX_IP}, session=<{rng.randrange(1 << 60):x}>",
                )
            )
