"""The tray's small windows, in Tk (part of Python; nothing more to install): the PIN dialog,
the folder chooser, the quarantine list with restore, a text window (audit log, about), a
notice, and the pop-up menu for trays that cannot show menus themselves (plain X11).

Every window is made and touched in the tray's own Tk thread (agent/ui.py); the asking thread
waits for the answer. Window classes (``WM_CLASS``) start with ``veil-`` so tests and window
rules can find them: ``veil-pin``, ``veil-setup``, ``veil-quarantine``, ``veil-text``, ``veil-note``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.setup_flow import SetupChoice
from agent.tray.menu import MenuEntry
from agent.ui import TkThread, UiUnavailable

PIN_DIALOG_TIMEOUT_S = 120.0  # a forgotten PIN dialog cancels itself: it would hold up every other request


QUARANTINE_IDLE_S = 120.0  # the quarantine window, and the key it holds, last this long unused


class TkPrompts:
    def __init__(self, ui: TkThread):
        self.ui = ui
        self.menu: Any = None  # the pop-up menu last posted (tests read entry positions from it)
        ui.on_close(self._forget_menu)

    def _forget_menu(self) -> None:
        # Tk objects must be dropped in the Tk thread: one left for the main thread to collect
        # at exit makes Tcl abort the process
        if self.menu is not None:
            self.menu.destroy()
            self.menu = None

    # -- waiting for an answer from the Tk thread -----------------------------------------

    def _ask(self, build: Callable[[Callable[[Any], None]], None]) -> Any:
        answered, answer = threading.Event(), []

        def finish(value: Any) -> None:
            if not answered.is_set():
                answer.append(value)
                answered.set()

        try:
            self.ui.post(lambda: build(finish))
        except UiUnavailable:
            return None  # the tray is closing
        while not answered.wait(0.5):
            if not self.ui.running:
                return None  # closed while asking: the windows went with it
        return answer[0] if answer else None

    def _window(self, class_name: str, title: str) -> Any:
        tk = self.ui.tk
        window = tk.Toplevel(self.ui.root, class_=class_name)
        window.title(title)
        window.attributes("-topmost", True)
        return window

    def _focus_when_shown(self, dialog: str, tries: int = 100) -> None:
        """Give the keyboard to one of Tk's own modal dialogs (by its window path) once it is on
        screen: Tk focuses its entry inside the application only, and a dialog opened from a
        tray click gets no focus from a window manager that prevents focus stealing (or none).
        Its nested event loop still runs ``after`` callbacks, so this looks every 50 ms."""
        root = self.ui.root

        def look(left: int) -> None:
            try:
                if root.tk.call("winfo", "exists", dialog) and root.tk.call("winfo", "viewable", dialog):
                    root.tk.call("focus", "-force", root.tk.call("focus", "-lastfor", dialog))  # its entry, once Tk chose it
                    return
            except self.ui.tk.TclError:
                pass  # not made yet, or already gone
            if left > 0:
                root.after(50, look, left - 1)

        root.after(50, look, tries)

    @staticmethod
    def _centre(window: Any) -> None:
        window.update_idletasks()
        x = (window.winfo_screenwidth() - window.winfo_reqwidth()) // 2
        y = (window.winfo_screenheight() - window.winfo_reqheight()) // 3
        window.geometry(f"+{x}+{y}")

    # -- Prompts ----------------------------------------------------------------------------

    def ask_pin(self, purpose: str, problem: str) -> str | None:
        def build(finish: Callable[[Any], None]) -> None:
            tk = self.ui.tk
            window = self._window("veil-pin", "Veil — PIN")
            window.resizable(False, False)
            tk.Label(window, text=f"Enter the PIN to {purpose}.", padx=16, pady=10).pack()
            if problem:
                tk.Label(window, text=problem, fg="#b00020", padx=16).pack()
            entry = tk.Entry(window, show="•", width=24)
            entry.pack(padx=16, pady=8)
            buttons = tk.Frame(window)
            buttons.pack(pady=(0, 12))

            def done(value: str | None) -> None:
                window.destroy()
                finish(value)

            tk.Button(buttons, text="OK", width=8, command=lambda: done(entry.get())).pack(side="left", padx=4)
            tk.Button(buttons, text="Cancel", width=8, command=lambda: done(None)).pack(side="left", padx=4)
            window.bind("<Return>", lambda _event: done(entry.get()))
            window.bind("<Escape>", lambda _event: done(None))
            window.protocol("WM_DELETE_WINDOW", lambda: done(None))
            window.after(int(PIN_DIALOG_TIMEOUT_S * 1000), lambda: done(None) if window.winfo_exists() else None)
            self._centre(window)
            window.lift()
            # the keyboard goes to the PIN box as soon as the window is on screen (forcing the
            # focus before the window is mapped does nothing)
            window.bind("<Map>", lambda _event: entry.focus_force())
            entry.focus_force()

        return self._ask(build)

    def choose_folder(self) -> Path | None:
        def build(finish: Callable[[Any], None]) -> None:
            from tkinter import filedialog

            self._focus_when_shown(".__tk_choosedir")
            try:
                chosen = filedialog.askdirectory(parent=self.ui.root, title="Veil — scan a folder", mustexist=True)
            except self.ui.tk.TclError:
                chosen = ""  # the tray closed the chooser under it (agent/ui.py, stop)
            finish(Path(chosen) if chosen else None)

        return self._ask(build)

    def choose_picture(self, title: str) -> Path | None:
        def build(finish: Callable[[Any], None]) -> None:
            from tkinter import filedialog

            self._focus_when_shown(".__tk_filedialog")
            try:
                chosen = filedialog.askopenfilename(parent=self.ui.root, title=title)
            except self.ui.tk.TclError:
                chosen = ""  # the tray closed the chooser under it
            finish(Path(chosen) if chosen else None)

        return self._ask(build)

    def show_quarantine(self, rows: list[tuple[str, str]], restore: Callable[[str], str], forget: Callable[[], None],
                        idle_s: float = QUARANTINE_IDLE_S) -> None:
        def build(_finish: Callable[[Any], None]) -> None:
            tk = self.ui.tk
            window = self._window("veil-quarantine", "Veil — quarantine")
            last_use = [time.monotonic()]

            def used(_event: Any = None) -> None:
                last_use[0] = time.monotonic()

            def closed(event: Any) -> None:
                if event.widget is window:  # the window itself, not one of its widgets
                    forget()

            def close_when_idle() -> None:
                if not window.winfo_exists():
                    return
                if time.monotonic() - last_use[0] >= idle_s:
                    window.destroy()  # the unlocked key goes with it (``closed``)
                else:
                    window.after(1000, close_when_idle)

            for sequence in ("<KeyPress>", "<ButtonPress>", "<Motion>"):
                window.bind(sequence, used, add="+")  # a toplevel sees its widgets' events too
            window.bind("<Destroy>", closed, add="+")
            window.after(1000, close_when_idle)
            ids = [entry_id for entry_id, _line in rows]
            listing = tk.Listbox(window, width=100, height=min(20, max(5, len(rows))), selectmode="browse")
            for _entry_id, line in rows:
                listing.insert("end", line)
            listing.pack(fill="both", expand=True, padx=8, pady=8)
            closes = f"this window closes after {idle_s / 60:g} minutes unused"
            said = f"{len(rows)} file{'' if len(rows) == 1 else 's'} in the quarantine" if rows else "The quarantine is empty"
            note = tk.Label(window, text=f"{said}; {closes}.", anchor="w")
            note.pack(fill="x", padx=8)
            buttons = tk.Frame(window)
            buttons.pack(pady=8)

            def restore_selected() -> None:
                chosen = listing.curselection()
                if not chosen:
                    note.configure(text="Choose a file to restore first.")
                    return
                index = chosen[0]
                note.configure(text="Restoring…")

                def work() -> None:  # file work off the Tk thread
                    said = restore(ids[index])
                    self._show(lambda: show_result(index, said))

                threading.Thread(target=work, name="veil-tray-restore", daemon=True).start()

            def show_result(index: int, said: str) -> None:
                if window.winfo_exists():
                    note.configure(text=said)
                    if said.startswith("restored"):
                        listing.delete(index)
                        del ids[index]

            tk.Button(buttons, text="Restore", width=10, command=restore_selected).pack(side="left", padx=4)
            tk.Button(buttons, text="Close", width=10, command=window.destroy).pack(side="left", padx=4)
            self._centre(window)

        self._show(lambda: build(lambda _value: None))

    def show_setup(self, choice: SetupChoice, profiles: dict[str, str], pin_set: bool,
                   save: Callable[[SetupChoice], str], idle_s: float = QUARANTINE_IDLE_S) -> None:
        """The setup window: a new PIN (twice), the profile, the watched folders (added with the
        folder chooser) and screen protection. ``save`` runs off the Tk thread and returns what
        to say: "saved…" closes the window, anything else is shown in it as the problem."""
        def build(_finish: Callable[[Any], None]) -> None:
            tk = self.ui.tk
            window = self._window("veil-setup", "Set up Veil")
            window.resizable(False, False)
            last_use = [time.monotonic()]

            def used(_event: Any = None) -> None:
                last_use[0] = time.monotonic()

            def close_when_idle() -> None:  # it holds the PIN given to open it: not left open for whoever comes next
                if not window.winfo_exists():
                    return
                if time.monotonic() - last_use[0] >= idle_s:
                    window.destroy()
                else:
                    window.after(1000, close_when_idle)

            for sequence in ("<KeyPress>", "<ButtonPress>", "<Motion>"):
                window.bind(sequence, used, add="+")
            window.after(1000, close_when_idle)
            top = tk.Frame(window, padx=16)
            top.pack(fill="x", pady=(12, 0))
            tk.Label(top, text="Veil's settings" if pin_set else "Welcome to Veil", font=("TkDefaultFont", 14, "bold")).pack(anchor="w")
            intro = ("Choose how Veil protects this computer. The PIN guards pausing, quitting, restoring files "
                     "and these settings: until one is set, anyone at the keyboard can change them.")
            tk.Label(top, text=intro, wraplength=600, justify="left").pack(anchor="w", pady=(4, 0))
            body = tk.Frame(window, padx=16, pady=12)
            body.pack(fill="both")
            pin_label = "New PIN (empty keeps the PIN)" if pin_set else "PIN (at least 6 characters)"
            tk.Label(body, text=pin_label).grid(row=1, column=0, sticky="w")
            first = tk.Entry(body, show="•", width=24)
            first.grid(row=1, column=1, columnspan=2, sticky="w", pady=2)
            tk.Label(body, text="PIN again").grid(row=2, column=0, sticky="w")
            again = tk.Entry(body, show="•", width=24)
            again.grid(row=2, column=1, columnspan=2, sticky="w", pady=2)

            tk.Label(body, text="Profile").grid(row=3, column=0, sticky="nw", pady=(10, 0))
            profile = tk.StringVar(window, value=choice.profile)
            column = tk.Frame(body)
            column.grid(row=3, column=1, columnspan=2, sticky="w", pady=(10, 0))
            for name, about in profiles.items():
                tk.Radiobutton(column, text=f"{name}: {about}", variable=profile, value=name, anchor="w").pack(fill="x")

            tk.Label(body, text="Watched folders").grid(row=4, column=0, sticky="nw", pady=(10, 0))
            folders = tk.Listbox(body, width=60, height=5, selectmode="browse")
            for folder in choice.folders:
                folders.insert("end", folder)
            folders.grid(row=4, column=1, sticky="w", pady=(10, 0))
            side = tk.Frame(body)
            side.grid(row=4, column=2, sticky="n", padx=(6, 0), pady=(10, 0))

            def add_folder() -> None:
                from tkinter import filedialog

                self._focus_when_shown(".__tk_choosedir")
                try:
                    chosen = filedialog.askdirectory(parent=window, title="Veil — a folder to watch", mustexist=True)
                except tk.TclError:
                    return  # the tray closed the chooser under it
                if chosen and chosen not in folders.get(0, "end"):
                    folders.insert("end", chosen)

            def remove_folder() -> None:
                for index in reversed(folders.curselection()):
                    folders.delete(index)

            tk.Button(side, text="Add…", width=8, command=add_folder).pack(pady=(0, 4))
            tk.Button(side, text="Remove", width=8, command=remove_folder).pack()

            screen = tk.BooleanVar(window, value=choice.screen)
            tk.Checkbutton(body, text="Also protect the screen (blur pictures as they appear)", variable=screen,
                           anchor="w").grid(row=5, column=0, columnspan=3, sticky="w", pady=(10, 0))
            note = tk.Label(body, text="", fg="#b00020", wraplength=440, justify="left")
            note.grid(row=6, column=0, columnspan=3, sticky="w", pady=(8, 0))
            buttons = tk.Frame(window)
            buttons.pack(pady=(0, 12))

            def done() -> None:
                from agent.setup_flow import pin_problem

                pin = first.get()
                problem = pin_problem(pin, again.get()) if pin or again.get() or not pin_set else ""
                if not folders.size():
                    problem = problem or "Add at least one folder to watch."
                if problem:
                    note.configure(text=problem[0].upper() + problem[1:] + ("" if problem.endswith(".") else "."))
                    return
                chosen = SetupChoice(profile.get(), tuple(folders.get(0, "end")), bool(screen.get()), pin or None)
                note.configure(text="Saving…", fg="#333333")
                save_button.configure(state="disabled")

                def work() -> None:  # PIN hashing and file writes off the Tk thread
                    said = save(chosen)
                    self._show(lambda: finished(said))

                threading.Thread(target=work, name="veil-tray-setup", daemon=True).start()

            def finished(said: str) -> None:
                if not window.winfo_exists():
                    return
                if said.startswith("saved"):
                    window.destroy()
                    self.tell(said[0].upper() + said[1:])
                else:
                    note.configure(text=said, fg="#b00020")
                    save_button.configure(state="normal")

            save_button = tk.Button(buttons, text="Save", width=10, command=done, default="active")
            save_button.pack(side="left", padx=4)
            tk.Button(buttons, text="Cancel", width=10, command=window.destroy).pack(side="left", padx=4)
            window.bind("<Return>", lambda _event: done())
            window.bind("<Escape>", lambda _event: window.destroy())
            self._centre(window)
            window.lift()
            window.bind("<Map>", lambda event: first.focus_force() if event.widget is window else None)
            first.focus_force()

        self._show(lambda: build(lambda _value: None))

    def show_text(self, title: str, lines: list[str]) -> None:
        def build() -> None:
            tk = self.ui.tk
            window = self._window("veil-text", title)
            text = tk.Text(window, width=110, height=min(30, max(6, len(lines) + 1)), wrap="none")
            text.insert("1.0", "\n".join(lines))
            text.configure(state="disabled")
            text.pack(fill="both", expand=True, padx=8, pady=8)
            tk.Button(window, text="Close", width=10, command=window.destroy).pack(pady=(0, 8))
            self._centre(window)

        self._show(build)

    def tell(self, message: str) -> None:
        def build() -> None:
            tk = self.ui.tk
            window = self._window("veil-note", "Veil")
            tk.Label(window, text=message, wraplength=420, justify="left", padx=16, pady=12).pack()
            tk.Button(window, text="OK", width=8, command=window.destroy).pack(pady=(0, 12))
            self._centre(window)

        self._show(build)

    def _show(self, build: Callable[[], None]) -> None:
        try:
            self.ui.post(build)
        except UiUnavailable:
            pass  # the tray is closing: nobody to show it to

    # -- the pop-up menu --------------------------------------------------------------------

    def popup(self, entries: list[MenuEntry], x: int, y: int) -> None:
        """Post the menu at (x, y) on the screen (Tk thread; any thread may call)."""
        self._show(lambda: self._popup(entries, x, y))

    def _popup(self, entries: list[MenuEntry], x: int, y: int) -> None:
        if self.menu is not None:
            self.menu.unpost()
            self.menu.destroy()
        self.menu = self._tk_menu(self.ui.root, entries)
        self.menu.tk_popup(x, y)

    def _tk_menu(self, parent: Any, entries: list[MenuEntry]) -> Any:
        tk = self.ui.tk
        menu = tk.Menu(parent, tearoff=False)
        for entry in entries:
            if entry.separator_before:
                menu.add_separator()
            state = "normal" if entry.enabled else "disabled"
            if entry.children:
                menu.add_cascade(label=entry.label, menu=self._tk_menu(menu, entry.children), state=state)
            elif entry.checked is not None:
                chosen = tk.BooleanVar(menu, value=entry.checked)
                menu.add_checkbutton(label=entry.label, variable=chosen, command=entry.action, state=state)
                menu.vars = getattr(menu, "vars", []) + [chosen]  # kept alive with the menu
            else:
                menu.add_command(label=entry.label, command=entry.action, state=state)
        return menu
