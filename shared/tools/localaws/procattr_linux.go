package localaws

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the child die with this process, so that a test
// binary that crashes leaves no DynamoDB Local behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
