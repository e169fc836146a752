"""A real D-Bus session bus (Debian's dbus-daemon) for one test, with a listener that owns
org.freedesktop.Notifications, as a desktop's notification daemon does, and records each call."""

from __future__ import annotations

import subprocess
import threading

from tests.conftest import require_tool


class NotificationService:
    def __init__(self, capabilities: tuple[str, ...] = ("body",)):
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        daemon = require_tool("dbus-daemon", "dbus")
        self.proc = subprocess.Popen([daemon, "--session", "--nofork", "--print-address=1"], stdout=subprocess.PIPE, text=True)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            self.proc.kill()
            raise RuntimeError("dbus-daemon did not start")
        self.env = {"DBUS_SESSION_BUS_ADDRESS": self.address}
        self.capabilities = list(capabilities)
        self.received: list[dict] = []
        self.changed = threading.Event()
        self._connection = open_dbus_connection(bus=self.address)
        self._connection.send_and_get_reply(message_bus.RequestName("org.freedesktop.Notifications"), timeout=5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-notifications", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        from jeepney import HeaderFields, MessageType, new_error, new_method_return

        while not self._stop.is_set():
            try:
                message = self._connection.receive(timeout=0.2)
            except TimeoutError:
                continue
            except Exception:
                return  # the bus went away
            if message.header.message_type != MessageType.method_call:
                continue
            member = message.header.fields.get(HeaderFields.member)
            if member == "Notify":
                names = ("app_name", "replaces_id", "app_icon", "summary", "body", "actions", "hints", "expire_timeout")
                self.received.append(dict(zip(names, message.body)))
                self._connection.send(new_method_return(message, "u", (len(self.received),)))
                self.changed.set()
            elif member == "GetCapabilities":
                self._connection.send(new_method_return(message, "as", (self.capabilities,)))
            else:
                self._connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod"))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._connection.close()
        self.proc.kill()
        self.proc.wait()
