"""cnnvis paraview keeps ParaView's Welcome dialog away for its session and puts the user's choice back."""

from __future__ import annotations

from cnn_engine.paraview_launch import WELCOME_KEY, settings_file, welcome_dialog_off


def test_settings_file_follows_xdg_config_home(tmp_path):
    assert settings_file(environ={"XDG_CONFIG_HOME": str(tmp_path), "HOME": "/nowhere"}) == (
        tmp_path / "ParaView" / "ParaView5.11.0.ini")
    assert settings_file(environ={"HOME": str(tmp_path)}) == tmp_path / ".config" / "ParaView" / "ParaView5.11.0.ini"


def test_fresh_home_gets_the_dialog_off_during_the_session_and_nothing_after(tmp_path):
    path = tmp_path / "ParaView" / "ParaView5.11.0.ini"
    with welcome_dialog_off(path):
        assert path.read_text() == f"[General]\n{WELCOME_KEY}=false\n"
        # ParaView writes its own settings on exit.
        path.write_text(f"[General]\n{WELCOME_KEY}=false\nOutputMessages.ShowFullMessages=false\n")
    assert path.read_text() == "[General]\nOutputMessages.ShowFullMessages=false\n"


def test_a_users_true_setting_is_put_back(tmp_path):
    path = tmp_path / "ParaView5.11.0.ini"
    path.write_text(f"[General]\nA=1\n{WELCOME_KEY}=true\nB=2\n\n[Other]\nC=3\n")
    with welcome_dialog_off(path):
        assert path.read_text() == f"[General]\nA=1\n{WELCOME_KEY}=false\nB=2\n\n[Other]\nC=3\n"
    assert path.read_text() == f"[General]\nA=1\n{WELCOME_KEY}=true\nB=2\n\n[Other]\nC=3\n"


def test_settings_without_the_key_get_it_in_the_general_section(tmp_path):
    path = tmp_path / "ParaView5.11.0.ini"
    path.write_text("[Other]\nC=3\n\n[General]\nA=1\n")
    with welcome_dialog_off(path):
        assert path.read_text() == f"[Other]\nC=3\n\n[General]\n{WELCOME_KEY}=false\nA=1\n"
    assert path.read_text() == "[Other]\nC=3\n\n[General]\nA=1\n"


def test_a_user_who_turned_it_off_keeps_it_off(tmp_path):
    path = tmp_path / "ParaView5.11.0.ini"
    text = f"[General]\n{WELCOME_KEY}=false\n"
    path.write_text(text)
    with welcome_dialog_off(path):
        pass
    assert path.read_text() == text


def test_a_choice_made_during_the_session_is_kept(tmp_path):
    # The user ticked the Welcome dialog back on in Edit > Settings while cnnvis ran ParaView.
    path = tmp_path / "ParaView5.11.0.ini"
    with welcome_dialog_off(path):
        path.write_text(f"[General]\n{WELCOME_KEY}=true\n")
    assert path.read_text() == f"[General]\n{WELCOME_KEY}=true\n"


def test_an_unusable_settings_folder_changes_nothing(tmp_path):
    (tmp_path / "ParaView").write_text("a file where ParaView's settings folder would be")
    path = tmp_path / "ParaView" / "ParaView5.11.0.ini"
    with welcome_dialog_off(path):
        pass
    assert (tmp_path / "ParaView").read_text() == "a file where ParaView's settings folder would be"
