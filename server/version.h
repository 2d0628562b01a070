#ifndef BERTH_VERSION_H
#define BERTH_VERSION_H
#define BERTH_VERSION "0.1.0"
#endif
