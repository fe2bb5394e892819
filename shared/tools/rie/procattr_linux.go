package rie

import (
	"os/exec"
	"syscall"
)

// ownGroup puts the emulator in its own process group, so that Stop also
// reaches the bootstrap it forks, and makes it die with this process.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
