"""SSH ProxyCommand relay: connect to HOST PORT and copy stdin/stdout both ways.

Run inside the lab namespace (ip netns exec agility-lab python3 nsproxy.py %h %p): the
host has neither nc nor socat, and the guests are reachable only from the namespace.
With --probe it only checks that the port answers with an SSH banner (exit 0/1).
"""
import os
import socket
import sys
import threading


def probe(host, port, timeout=3.0):
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def relay(host, port):
    sock = socket.create_connection((host, port), timeout=15)
    sock.settimeout(None)

    def upstream():
        try:
            while True:
                data = os.read(0, 65536)
                if not data:
                    break
                sock.sendall(data)
        except OSError:
            pass
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=upstream, daemon=True).start()
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            view = memoryview(data)
            while view:
                view = view[os.write(1, view):]
    except OSError:
        pass


def main(argv):
    if len(argv) == 4 and argv[1] == "--probe":
        return 0 if probe(argv[2], int(argv[3])) else 1
    if len(argv) != 3:
        print("usage: nsproxy.py [--probe] HOST PORT", file=sys.stderr)
        return 2
    relay(argv[1], int(argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
