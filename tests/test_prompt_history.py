"""Prompt history: every prompt used, searchable, back into the prompt box, kept across restarts."""

from __future__ import annotations

from sdstudio.core.prompt_history import PromptHistory, default_history_path


def test_add_search_and_persist(tmp_path):
    path = tmp_path / "h.sqlite3"
    with PromptHistory(path) as h:
        assert h.add("a red fox", "blurry")
        assert h.add("a blue whale, 100% real_photo")
        assert h.add("a red fox", "blurry")  # again: one entry, used twice
        assert not h.add("   ")
    with PromptHistory(path) as h:  # a restart
        entries = h.search()
        assert [e.prompt for e in entries] == ["a red fox", "a blue whale, 100% real_photo"]
        assert entries[0].uses == 2 and entries[0].negative_prompt == "blurry"
        assert [e.prompt for e in h.search("fox")] == ["a red fox"]
        assert [e.prompt for e in h.search("blurry")] == ["a red fox"]  # the negative counts
        assert [e.prompt for e in h.search("100%")] == ["a blue whale, 100% real_photo"]
        assert h.search("%") == h.search("100%")  # % and _ are literal, not wildcards
        assert h.search("red whale") == []  # every word must match
        h.remove("a red fox", "blurry")
        assert [e.prompt for e in h.search()] == ["a blue whale, 100% real_photo"]


def test_odd_text_and_a_damaged_file(tmp_path):
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with PromptHistory(path) as h:
        assert h.add("lone \ud800 surrogate\x00", "x" * 100_000)
        [entry] = h.search("surrogate")
        assert len(entry.negative_prompt) == 64 << 10 and "\x00" not in entry.prompt
    assert list(tmp_path.glob("h.sqlite3.damaged-*"))  # the damaged file was kept aside


def test_history_lives_in_the_user_data_folder(_isolated_user_dirs):
    assert str(default_history_path()).startswith(str(_isolated_user_dirs))


def test_panel_puts_a_prompt_back(qtbot, tmp_path):
    from sdstudio.ui.prompt_history_panel import PromptHistoryPanel

    panel = PromptHistoryPanel(PromptHistory(tmp_path / "h.sqlite3"))
    qtbot.addWidget(panel)
    panel.record("a castle", "fog")
    panel.record("a lighthouse", "")
    assert panel.list.count() == 2 and panel.list.item(0).text() == "a lighthouse"
    panel.search.setText("castle")
    assert panel.list.count() == 1
    with qtbot.waitSignal(panel.promptChosen) as blocker:
        panel.list.itemClicked.emit(panel.list.item(0))
    assert blocker.args == ["a castle", "fog"]
    panel.history.close()


def test_window_records_each_generate_and_fills_the_prompt_box(qtbot, monkeypatch):
    from sdstudio.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    monkeypatch.setattr(w.jobs, "submit", lambda params, summary: 1)  # no engine needed
    w.prompt_panel.set_texts("a quiet harbour", "people")
    assert w.generate() == 1
    w.prompt_panel.set_texts("", "")
    panel = w.prompt_history
    assert panel.list.item(0).text() == "a quiet harbour"
    panel.list.itemClicked.emit(panel.list.item(0))
    assert w.prompt_panel.texts() == ("a quiet harbour", "people")
    w.close()
