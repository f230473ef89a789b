"""``cosmos doctor``: every check a real run needs, each with the command that fixes it.

Entry points: :func:`cosmos_tui.doctor.runner.run_doctor` (one host) and
:func:`cosmos_tui.doctor.runner.run_doctors` (several at once); results are
:class:`cosmos_tui.doctor.model.DoctorReport`.
"""
