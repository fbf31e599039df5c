/* version.h - program version (bumped by hand on release). */
#ifndef ABLASIM_VERSION_H
#define ABLASIM_VERSION_H
#define ABLASIM_VERSION "0.1.0"
#endif
