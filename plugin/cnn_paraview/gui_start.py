"""Run inside the ParaView GUI by ``cnnvis paraview`` (as --script): open a state or an image.

Environment: CNNVIS_STATE (a .pvsm to load), or CNNVIS_IMAGE with CNNVIS_MODEL and
CNNVIS_WEIGHTS (an image to show as the overview of its volume, see scenes.py).
CNNVIS_GUI_REPORT, when set, names a file that receives the pipeline's source names once
everything is shown (used by the GUI test).

ParaView runs a --script before its main window first appears: work done here directly would
leave the screen black, without progress, while the model loads and runs. So the script only
sets a short one-shot timer on the render view's interactor (a Qt timer in the GUI) and builds
the image's scene when it fires, with the window on screen and ParaView's progress bar moving.
A state is loaded at once but not rendered: its pipeline runs on the window's first paint.
"""

import os

from paraview import simple

_DELAY_MS = 300


def _load_state() -> None:
    # Loaded here, before the window shows: loading a state from the timer (inside an event of a
    # view that the state replaces) crashed ParaView. Nothing renders yet, so the pipeline runs on
    # the window's first paint, with the progress bar on screen.
    simple.LoadState(os.environ["CNNVIS_STATE"])
    # A render view: _start_later asks for one and would add a new one to the layout if the active
    # view were a state's spreadsheet or chart (GetViews lists views by name).
    views = simple.GetViews("RenderView") or simple.GetViews()
    if views:
        simple.SetActiveView(views[0])


def _open(view) -> None:
    if os.environ.get("CNNVIS_IMAGE") and not os.environ.get("CNNVIS_STATE"):
        from cnn_paraview.scenes import show_volume

        show_volume(os.environ["CNNVIS_IMAGE"], model=os.environ.get("CNNVIS_MODEL") or "resnet50",
                    weights=os.environ.get("CNNVIS_WEIGHTS") or "default", view=view)
    # Not simple.Render: on a session's first render it resets the camera, losing the framing a
    # state was saved with (File > Load State keeps it too). show_volume frames its own scene.
    view.StillRender()
    if os.environ.get("CNNVIS_GUI_REPORT"):
        with open(os.environ["CNNVIS_GUI_REPORT"], "w") as report:
            report.write("\n".join(sorted(name for (name, _) in simple.GetSources())) + "\n")


def _start_later() -> None:
    view = simple.GetActiveViewOrCreate("RenderView")
    interactor = view.GetRenderWindow().GetInteractor() if view is not None else None
    if interactor is None:
        _open(view)
        return
    state = {}

    def fire(caller, event) -> None:
        if state.pop("timer", None) is None:
            return  # another timer (the view's own)
        caller.RemoveObserver(state.pop("observer"))
        _open(view)

    state["observer"] = interactor.AddObserver("TimerEvent", fire)
    state["timer"] = interactor.CreateOneShotTimer(_DELAY_MS)


if os.environ.get("CNNVIS_STATE"):
    _load_state()
_start_later()
