"""No module of the runtime imports this one."""
import flashinfer
