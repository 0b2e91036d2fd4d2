import { walkMinutes } from "./lib/walks";

export function summary(minutes: number[]): string {
  return `walked ${walkMinutes(minutes)} minutes`;
}
