#ifndef ORCASTRA_CLIBPQ_SHIM_H
#define ORCASTRA_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
