package rawio

import "syscall"

const msgNoSignal = syscall.MSG_NOSIGNAL
